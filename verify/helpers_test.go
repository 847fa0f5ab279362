package verify

import (
	"os"
	"path/filepath"
	"testing"
)

// fixtureDir returns ../shared/fixtures/<sub> beside the repository root,
// skipping the test when it is absent (failing instead under QUANTPACK_CI=1,
// where the fixtures must be there).
func fixtureDir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "fixtures", sub)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("QUANTPACK_CI") == "1" {
			t.Fatalf("fixtures missing in CI: %v", err)
		}
		t.Skipf("fixtures not found (%v); they live in ../shared/fixtures", err)
	}
	return p
}
