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
		Open: openVariant}
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

// TestSensitivityShardsMerge: in a sharded study each model's sensitivity
// runs in exactly one shard (the one holding its first precision), and
// study merge lists every model's, in model order, linked from the merged
// report's directory to the shard's files.
func TestSensitivityShardsMerge(t *testing.T) {
	root := t.TempDir()
	sens := &SensitivityOptions{Precision: convert.Int8, Samples: 2,
		Open: openVariant}
	var dirs []string
	runs := 0
	for i := 1; i <= 2; i++ {
		opt := quickOptions(t, filepath.Join(root, "shard", string(rune('0'+i))))
		opt.Precisions = []convert.Precision{convert.FP32, convert.Int8}
		opt.BatchSizes, opt.Iters, opt.Samples = []int{1}, 1, 2
		opt.Shard = Shard{Index: i, Total: 2}
		opt.Sensitivity = sens
		r, err := Run(t.Context(), opt)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		runs += len(r.Sensitivity)
		dirs = append(dirs, opt.Out)
	}
	if runs != 2 {
		t.Fatalf("%d sensitivity reports over the shards, want one per model (2)", runs)
	}
	out := filepath.Join(root, "merged")
	m, err := Merge(dirs, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sensitivity) != 2 || m.Sensitivity[0].Model != m.Models[0].Name || m.Sensitivity[1].Model != m.Models[1].Name {
		t.Fatalf("merged sensitivity %+v", m.Sensitivity)
	}
	md, err := os.ReadFile(filepath.Join(out, FileMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Sensitivity {
		png := filepath.Join(out, filepath.FromSlash(s.Dir), tune.FilePNG)
		if _, err := os.Stat(png); err != nil {
			t.Fatalf("%s: the merged report's link does not reach the shard's heatmap: %v", s.Model, err)
		}
		if !strings.Contains(string(md), "("+s.Dir+"/"+tune.FilePNG+")") {
			t.Fatalf("merged report.md lacks %s's heatmap", s.Model)
		}
	}
}

// openVariant opens tune's in-memory variant graphs in ONNX Runtime with the
// threads and external-data folder tune asks for (cmd's tuneOpener).
func openVariant(model []byte, o tune.SessionOptions) (verify.Runner, error) {
	s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: max(o.Threads, 1), ExternalDataDir: o.DataDir})
	if err != nil {
		return nil, err
	}
	return s, nil
}
