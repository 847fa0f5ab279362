package study

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// TestStudySensitivity: --sensitivity puts each model's heatmap and its
// most sensitive layers (those of the full sensitivity report, in its KL
// order) into report.md and report.json, and a second run reuses the
// report instead of measuring again.
func TestStudySensitivity(t *testing.T) {
	out := t.TempDir()
	opt := quickOptions(t, out)
	opt.Sources = opt.Sources[:1]
	opt.Precisions = []convert.Precision{convert.FP32, convert.Int8}
	opt.BatchSizes = []int{1}
	opt.Sensitivity = &SensitivityOptions{Precision: convert.Int4, Samples: 4,
		Open: func(model []byte) (verify.Runner, error) { return ort.OpenBytes(model, ort.Options{IntraOpThreads: 1}) }}
	var lines []string
	opt.Log = logLines(&lines)
	r, err := Run(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sensitivity) != 1 {
		t.Fatalf("%d sensitivity summaries, want 1", len(r.Sensitivity))
	}
	s := r.Sensitivity[0]
	full, err := readSensitivity(filepath.Join(out, s.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if s.Layers != len(full.Layers) || len(s.MostSensitive) != min(TopSensitive, len(full.Layers)) || s.Ranking != "kl" {
		t.Fatalf("summary of %d layers lists %d (ranking %s); the report has %d", s.Layers, len(s.MostSensitive), s.Ranking, len(full.Layers))
	}
	// The listed layers are the top of the full report by KL, in order.
	for i, l := range s.MostSensitive {
		if i > 0 && l.Alone.KLMean > s.MostSensitive[i-1].Alone.KLMean {
			t.Fatalf("rank %d (KL %g) above rank %d (KL %g)", i+1, l.Alone.KLMean, i, s.MostSensitive[i-1].Alone.KLMean)
		}
		for _, o := range full.Layers {
			if o.Alone.KLMean > l.Alone.KLMean && !listed(s.MostSensitive, o.Name) {
				t.Fatalf("%s (KL %g) is not listed but %s (KL %g) is", o.Name, o.Alone.KLMean, l.Name, l.Alone.KLMean)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(out, FileMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	png1 := s.Dir + "/sensitivity.png"
	for _, want := range []string{"## Per-layer sensitivity", "(" + png1 + ")", "`" + s.MostSensitive[0].Name + "`"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("report.md lacks %q", want)
		}
	}
	f, err := os.Open(filepath.Join(out, filepath.FromSlash(png1)))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dy() < len(full.Layers)*10 {
		t.Fatalf("heatmap: %v (%v) for %d layers", err, img, len(full.Layers))
	}
	// Again: every cell and the sensitivity report are reused.
	lines = nil
	r2, err := Run(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if countPrefix(lines, "reused") != 3 || len(r2.Sensitivity) != 1 || r2.Sensitivity[0].Key != s.Key {
		t.Fatalf("second run: %q", lines)
	}
}

func listed(ls []tune.LayerResult, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}
