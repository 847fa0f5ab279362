package study

import (
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
)

// TestDescribeNames: a Hub snapshot directory is named by its commit, so the
// caller's name (the repository's) is used; duplicates still get -2.
func TestDescribeNames(t *testing.T) {
	src := filepath.Join(testenv.Fixtures(t, "reference"), "vit")
	names := map[string]int{}
	a, err := describe(src, "tiny-vit", names)
	if err != nil {
		t.Fatal(err)
	}
	b, err := describe(src, "tiny-vit", names)
	if err != nil {
		t.Fatal(err)
	}
	c, err := describe(src, "", names)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "tiny-vit" || b.Name != "tiny-vit-2" || c.Name != "vit" {
		t.Errorf("names %q %q %q", a.Name, b.Name, c.Name)
	}
}
