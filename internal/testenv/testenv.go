// Package testenv finds what tests need from outside the repository: the
// third-party fixtures in ../shared/fixtures. Absent fixtures skip a test,
// except in CI (QUANTPACK_CI=1, set by .ci/run), where they fail it.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run under .ci/run.
func InCI() bool { return os.Getenv("QUANTPACK_CI") == "1" }

// SkipOrFail skips the test, or fails it in CI, where nothing may be missing.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot returns the directory holding go.mod above the working directory
// (a test's working directory is its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found above the test directory")
		}
		dir = parent
	}
}

// Fixtures returns ../shared/fixtures/<sub> beside the repository root
// (sub may be empty), skipping when it is absent.
func Fixtures(t testing.TB, sub string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "..", "shared", "fixtures", sub)
	if _, err := os.Stat(p); err != nil {
		SkipOrFail(t, "fixtures not found (%v); they live in ../shared/fixtures", err)
	}
	return p
}
