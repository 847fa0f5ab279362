package study

import (
	"context"
	"errors"
	"hash/fnv"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/verify"
)

// fakeRunner stands in for ONNX Runtime, so the study's own logic (cells,
// cache, reports) is tested without the runtime: logits are a fixed linear
// function of the input, perturbed per model file so that the precisions
// disagree a little, deterministically.
type fakeRunner struct {
	size, dim int
	wobble    float32
}

func openFake(path string) (verify.Runner, error) {
	h := fnv.New32a()
	h.Write([]byte(filepath.Base(filepath.Dir(path))))
	w := float32(h.Sum32()%1000) / 1e5 // 0 .. 0.01
	if filepath.Base(filepath.Dir(path)) == "fp32" {
		w = 0
	}
	return &fakeRunner{size: 32, dim: 10, wobble: w}, nil
}

func (f *fakeRunner) Inputs() []verify.IOInfo {
	return []verify.IOInfo{{Name: "pixel_values", DType: verify.Float32, Shape: []int64{-1, 3, int64(f.size), int64(f.size)}}}
}

func (f *fakeRunner) Outputs() []verify.IOInfo {
	return []verify.IOInfo{{Name: "logits", DType: verify.Float32, Shape: []int64{-1, int64(f.dim)}}}
}

func (f *fakeRunner) Close() error { return nil }

func (f *fakeRunner) Run(ctx context.Context, in []verify.Tensor) ([]verify.Tensor, error) {
	if len(in) != 1 || in[0].Name != "pixel_values" {
		return nil, errors.New("fake: wrong inputs")
	}
	n := int(in[0].Shape[0])
	per := len(in[0].F32) / n
	out := make([]float32, n*f.dim)
	for s := range n {
		for i, v := range in[0].F32[s*per : (s+1)*per] {
			k := i % f.dim
			out[s*f.dim+k] += v * float32(k+1) * (1 + f.wobble*float32(k%3))
		}
	}
	return []verify.Tensor{{Name: "logits", DType: verify.Float32, Shape: []int64{int64(n), int64(f.dim)}, F32: out}}, nil
}

// TestStudyCacheWithFakeRunner: a second run over the same settings reuses
// every cell and reports the same numbers; a changed setting that the
// cache key holds (iterations) recomputes every cell. No ONNX Runtime.
func TestStudyCacheWithFakeRunner(t *testing.T) {
	fx := fixtures(t)
	out := t.TempDir()
	var log []string
	opt := Options{Sources: []string{filepath.Join(fx, "vit")}, Out: out,
		Runtime:    verify.Runtime{Open: openFake, Device: "cpu", ORTVersion: "fake", Threads: 1, BatchSizes: []int{1}, Warmup: 0, Iters: 2},
		Inputs:     verify.Inputs{Samples: 3},
		Precisions: []convert.Precision{convert.FP32, convert.Int8, convert.Int4},
		Log:        func(l string) { log = append(log, l) }}
	first, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Cells) != 3 || count(log, "done ") != 3 {
		t.Fatalf("first run: %d cells, log %q", len(first.Cells), log)
	}
	for _, c := range first.Cells {
		if c.Precision != "fp32" && (c.SizeRatio <= 0 || c.SizeRatio >= 1) {
			t.Errorf("%s: size ratio %v, want below fp32's", c.Precision, c.SizeRatio)
		}
	}
	log = nil
	second, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if count(log, "reused ") != 3 || count(log, "done ") != 0 {
		t.Fatalf("second run recomputed: %q", log)
	}
	for i, c := range second.Cells {
		if c.ONNXBytes != first.Cells[i].ONNXBytes || c.CosineMean != first.Cells[i].CosineMean {
			t.Errorf("%s: reused cell differs: %+v vs %+v", c.Precision, c, first.Cells[i])
		}
	}
	back, err := ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Cells) != 3 || back.Settings.ORTVersion != "fake" {
		t.Fatalf("report.json: %d cells, settings %+v", len(back.Cells), back.Settings)
	}
	log = nil
	opt.Iters = 3
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if count(log, "reused ") != 0 {
		t.Fatalf("changed --iters reused cells: %q", log)
	}
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
