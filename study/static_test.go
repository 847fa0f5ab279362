package study

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// fakeQuantize stands in for quantize.Run: it copies the FP32 export (the
// fake opener reads its config.json) and reports a quarter of its size.
// calls counts the passes run.
func fakeQuantize(t *testing.T, calls *int) func(context.Context, string, string, quantize.Config, quantize.OpenFunc) (*quantize.Manifest, error) {
	return func(_ context.Context, src, out string, cfg quantize.Config, _ quantize.OpenFunc) (*quantize.Manifest, error) {
		*calls++
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
				return nil, err
			}
		}
		if !strings.HasSuffix(cfg.Origin, " (exported at fp32)") || cfg.Method == "" || cfg.Samples < 1 {
			t.Errorf("pass given %+v", cfg)
		}
		return &quantize.Manifest{Sizes: quantize.Sizes{TotalBytes: fp32Bytes(src) / 4},
			Calibration: quantize.SourceInfo{Kind: "images", Path: cfg.CalibImages, Count: cfg.Samples}}, nil
	}
}

// calibImages copies three fixture pictures into a new folder.
func calibImages(t *testing.T) string {
	dir := t.TempDir()
	src := testenv.Fixtures(t, "images")
	for _, n := range []string{"astronaut.png", "camera.png", "coffee.png"} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestStaticColumnCache: with calibration images the study gains the
// int8-static column, in the report like any precision; its cell is keyed
// by the calibration images' bytes and the pass's settings, so changing
// either recomputes that cell alone; without calibration the other cells
// are the same cells (reused) and the column is gone. No ONNX Runtime.
func TestStaticColumnCache(t *testing.T) {
	out := t.TempDir()
	calib := calibImages(t)
	opt := fakeOptions(t, out)
	opt.Sources = opt.Sources[:1]
	opt.Precisions = []convert.Precision{convert.FP32, convert.Int8}
	calls := 0
	opt.Static = &Static{Config: quantize.Config{CalibImages: calib, Samples: 2}, run: fakeQuantize(t, &calls)}
	var log []string
	opt.Log = logLines(&log)
	run := func(what string, wantDone, wantCalls int) *Report {
		t.Helper()
		log = nil
		r, err := Run(context.Background(), opt)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := countPrefix(log, "done "); n != wantDone || calls != wantCalls {
			t.Fatalf("%s: %d cells computed (want %d), %d passes (want %d): %q", what, n, wantDone, calls, wantCalls, log)
		}
		return r
	}
	r := run("first", 3, 1)
	if opt.Static.Config.Method != "" || opt.Static.digest != "" {
		t.Fatalf("Run wrote into the caller's Static: %+v", opt.Static.Config)
	}
	if want := []string{"fp32", "int8", Int8Static}; !slices.Equal(r.Settings.Precisions, want) {
		t.Fatalf("columns %v, want %v", r.Settings.Precisions, want)
	}
	s := r.Cells[2]
	if s.Precision != Int8Static || s.Verify == nil || s.Calibration == nil || s.Calibration.Count != 2 ||
		s.SizeRatio < 0.2 || s.SizeRatio > 0.3 || s.ArtifactBytes != 0 {
		t.Fatalf("static cell %+v", s)
	}
	if c := r.Settings.Calibration; c == nil || c.Method != string(quantize.Percentile) || c.Percentile != quantize.DefaultPercentile ||
		c.Samples != 2 || c.ActivationType != string(quantize.Uint8) {
		t.Fatalf("settings record calibration %+v", r.Settings.Calibration)
	}
	md, err := os.ReadFile(filepath.Join(out, FileMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| vit | "+Int8Static+" |") {
		t.Fatalf("report.md has no %s row:\n%s", Int8Static, md)
	}

	run("unchanged", 0, 1)
	img := filepath.Join(calib, "camera.png")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	run("a calibration image changed", 1, 2)
	opt.Static.Config.Method = quantize.MinMax
	run("method changed", 1, 3)
	opt.Static.Config.Samples = 3
	run("samples changed", 1, 4)

	opt.Static = nil
	r = run("without calibration", 0, 4)
	if countPrefix(log, "reused ") != 2 || slices.Contains(r.Settings.Precisions, Int8Static) || r.Settings.Calibration != nil {
		t.Fatalf("without calibration: columns %v, log %q", r.Settings.Precisions, log)
	}
}

// TestStaticOptions: the int8-static column needs calibration images;
// --precisions parses it; Columns adds it after int8 only with calibration.
func TestStaticOptions(t *testing.T) {
	opt := fakeOptions(t, filepath.Join(t.TempDir(), "rep"))
	opt.Precisions = []convert.Precision{convert.FP32, Int8Static}
	if _, err := Run(context.Background(), opt); !errors.Is(err, ErrOption) {
		t.Fatalf("int8-static without calibration: %v", err)
	}
	opt.Static = &Static{Config: quantize.Config{CalibImages: filepath.Join(t.TempDir(), "none")}, Open: func([]byte, string) (verify.Runner, error) { return nil, nil }}
	if _, err := Run(context.Background(), opt); !errors.Is(err, ErrSource) {
		t.Fatalf("missing calibration folder: %v", err)
	}
	opt.Static.Config = quantize.Config{CalibImages: t.TempDir(), CalibData: []string{"x.npy"}}
	if _, err := Run(context.Background(), opt); !errors.Is(err, ErrOption) {
		t.Fatalf(".npy calibration: %v", err)
	}
	opt.Static.Config = quantize.Config{CalibImages: t.TempDir(), Method: "median"}
	if _, err := Run(context.Background(), opt); !errors.Is(err, ErrOption) {
		t.Fatalf("bad method: %v", err)
	}

	for _, mode := range []string{Int8StaticMode, "fast"} {
		o := fakeOptions(t, filepath.Join(t.TempDir(), "rep"))
		o.Int8Mode = mode
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrOption) {
			t.Fatalf("--int8-mode %s: %v", mode, err)
		}
	}

	ps, err := ParsePrecisions("fp32, int8-static,int4")
	if err != nil || !slices.Equal(ps, []convert.Precision{convert.FP32, Int8Static, convert.Int4}) {
		t.Fatalf("ParsePrecisions: %v %v", ps, err)
	}
	if _, err := ParsePrecisions("fp32,int3"); err == nil {
		t.Fatal("int3 parsed")
	}
	if got := Columns(nil, false); !slices.Equal(got, DefaultPrecisions) {
		t.Fatalf("default columns %v", got)
	}
	want := slices.Insert(slices.Clone(DefaultPrecisions), slices.Index(DefaultPrecisions, convert.Int8)+1, Int8Static)
	if got := Columns(nil, true); !slices.Equal(got, want) {
		t.Fatalf("default columns with calibration %v, want %v", got, want)
	}
	if got := Columns([]convert.Precision{Int8Static, convert.FP32}, true); !slices.Equal(got, []convert.Precision{Int8Static, convert.FP32}) {
		t.Fatalf("named column moved: %v", got)
	}
	if got := Columns([]convert.Precision{convert.FP16}, true); !slices.Equal(got, []convert.Precision{convert.FP16, Int8Static}) {
		t.Fatalf("without int8: %v", got)
	}
}

// TestStaticColumnORT is one real int8-static cell: vit-28 (trained on
// handwritten digits) calibrated in ONNX Runtime on 32 images of the
// fixture's calibration split and verified on its 500 labelled test
// images, disjoint from calibration. Static INT8 must keep the FP32 model's
// top-1 accuracy within 0.5 points (issue 10's bound; measured 0.0 at 128
// images, docs/study.md) and store int8 weights (below half the FP32 size:
// int8 is a quarter of fp32 for the quantized MatMul weights, the rest
// stays float).
func TestStaticColumnORT(t *testing.T) {
	fx := testenv.Fixtures(t, "trained")
	out := t.TempDir()
	open := opener(t)
	opt := Options{Sources: []string{filepath.Join(fx, "vit-28")}, Out: out,
		Precisions: []convert.Precision{convert.FP32},
		Runtime:    verify.Runtime{Open: open, Device: "cpu", ORTVersion: "asked", Threads: 1, Warmup: 0, Iters: 2},
		Inputs:     verify.Inputs{Images: filepath.Join(fx, "images")},
		Static: &Static{Config: quantize.Config{CalibImages: filepath.Join(fx, "calib"), Samples: 32},
			Open: func(model []byte, dir string) (verify.Runner, error) {
				return ort.OpenBytes(model, ort.Options{IntraOpThreads: 1, ExternalDataDir: dir})
			}},
	}
	r, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 2 || r.Cells[1].Precision != Int8Static {
		t.Fatalf("cells %v", rowsOf(r))
	}
	s := r.Cells[1]
	if s.Calibration == nil || s.Calibration.Kind != "images" || s.Calibration.Count != 32 || s.Calibration.SHA256 == "" {
		t.Fatalf("calibration %+v", s.Calibration)
	}
	if s.AccuracyDrop == nil || *s.AccuracyDrop > 0.5 || s.SizeRatio <= 0 || s.SizeRatio >= 0.5 {
		t.Fatalf("int8-static: accuracy drop %s pp, size ratio %v", optional(s.AccuracyDrop, fmtG), s.SizeRatio)
	}
	if r.Settings.ORTVersion != ort.Version() {
		t.Errorf("settings record ONNX Runtime %q, the sessions ran %q", r.Settings.ORTVersion, ort.Version())
	}
	m, err := os.ReadFile(filepath.Join(out, "work", "vit-28", Int8Static, "quantpack.json"))
	if err != nil || !strings.Contains(string(m), `"int8_mode": "static"`) {
		t.Fatalf("quantize manifest: %v\n%.300s", err, m)
	}
}
