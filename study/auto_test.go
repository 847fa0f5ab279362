package study

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// TestStudyAuto: the auto column searches and exports a mix per model,
// measures it like every other cell (its search record kept with it), and
// its cache key holds the target: a re-run reuses every cell, a changed
// target recomputes the auto cell only.
func TestStudyAuto(t *testing.T) {
	src := filepath.Join(testenv.Fixtures(t, "trained"), "vit-28")
	out := t.TempDir()
	opt := quickOptions(t, out)
	opt.Sources = []string{src}
	opt.Precisions = []convert.Precision{convert.FP32, convert.Int8, PrecisionAuto}
	opt.BatchSizes, opt.Samples = []int{1}, 8
	cos := 0.999
	opt.Auto = &AutoOptions{Target: tune.Target{MinCosine: &cos}, Samples: 16,
		Open:     openVariant,
		OpenPath: func(path string) (verify.Runner, error) { return ort.Open(path, ort.Options{IntraOpThreads: 1}) }}
	var lines []string
	opt.Log = logLines(&lines)
	r, err := Run(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	var auto *Cell
	for _, c := range r.Cells {
		if c.Precision == PrecisionAuto {
			auto = c
		}
	}
	if auto == nil || auto.Auto == nil || auto.ONNXBytes <= 0 || auto.SizeRatio <= 0 || auto.SizeRatio >= 1 || auto.Verify == nil {
		t.Fatalf("auto cell %+v", auto)
	}
	// The export the cell measured is a --precision auto export.
	b, err := os.ReadFile(filepath.Join(out, "work", r.Models[0].Name, PrecisionAuto, manifest.Name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || r.Settings.Auto == "" {
		t.Fatalf("no auto export manifest or setting")
	}
	if auto.Auto.Reached && auto.Auto.Measured.CosineMean < cos {
		t.Fatalf("search says reached with cosine %v", auto.Auto.Measured.CosineMean)
	}
	// Again: all reused.
	lines = nil
	if _, err := Run(t.Context(), opt); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(lines, "reused"); n != 3 {
		t.Fatalf("second run reused %d cells: %q", n, lines)
	}
	// Another target: only the auto cell runs again.
	cos2 := 0.99
	opt.Auto.Target.MinCosine = &cos2
	lines = nil
	if _, err := Run(t.Context(), opt); err != nil {
		t.Fatal(err)
	}
	if countPrefix(lines, "reused") != 2 || countPrefix(lines, "done") != 1 {
		t.Fatalf("changed target: %q", lines)
	}
}
