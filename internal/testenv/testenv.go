// Package testenv finds what tests need from outside the repository: the
// third-party fixtures in ../shared/fixtures. Absent fixtures skip a test,
// except in CI (QUANTPACK_CI=1, set by .ci/run), where they fail it.
package testenv

import (
	"errors"
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

// repoRoot returns the directory holding go.mod above the working directory
// (a test's working directory is its package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the test directory")
		}
		dir = parent
	}
}

// Lookup returns ../shared/fixtures/<sub> beside the repository root and
// whether it exists, for callers to whom fixtures are optional (fuzz seeds).
func Lookup(sub string) (string, bool) {
	root, err := repoRoot()
	if err != nil {
		return "", false
	}
	p := filepath.Join(root, "..", "shared", "fixtures", sub)
	_, err = os.Stat(p)
	return p, err == nil
}

// Fixtures returns ../shared/fixtures/<sub> beside the repository root
// (sub may be empty), skipping when it is absent.
func Fixtures(t testing.TB, sub string) string {
	t.Helper()
	p, ok := Lookup(sub)
	if !ok {
		SkipOrFail(t, "fixtures not found at %q; they live in ../shared/fixtures beside the repository", p)
	}
	return p
}
