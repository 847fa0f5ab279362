package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// BenchmarkVerifyOverhead compares a bare loop of ONNX Runtime runs
// ("ort-run", ns/op is the run) with the same runs through verify.Measure,
// the timing loop of verify ("verify-measure"): its ns/op is wall time per
// run including the loop's bookkeeping, and timed-ns/op is what verify
// reports (the sum of the timed regions / runs). Overhead of the loop =
// verify-measure ns/op − ort-run ns/op; bias of the reported figure =
// timed-ns/op − ort-run ns/op. The model is the 2-layer reference ViT, so
// a run is short (~50 µs) and any fixed overhead shows.
//
//	go test ./cmd/quantpack -run '^$' -bench VerifyOverhead -benchtime 20000x -count 5
func BenchmarkVerifyOverhead(b *testing.B) {
	requireORT(b)
	m := exportRef(b, "vit", convert.ExportFP32)
	s, err := ort.Open(filepath.Join(m, verify.ModelFile), ort.Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pre, err := verify.LoadPreprocessor(m)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]float32, pre.SampleLen())
	if err := pre.Synthetic(1, 0, buf); err != nil {
		b.Fatal(err)
	}
	h, w, _ := pre.FixedSize()
	in := []verify.Tensor{{Name: "pixel_values", DType: verify.Float32, Shape: []int64{1, 3, int64(h), int64(w)}, F32: buf}}
	ctx := context.Background()
	run := func() error { _, err := s.Run(ctx, in); return err }
	for range 20 { // warm the session's buffers and the CPU caches
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("ort-run", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify-measure", func(b *testing.B) {
		b.ReportAllocs()
		durs, err := verify.Measure(ctx, run, 0, b.N)
		if err != nil {
			b.Fatal(err)
		}
		var sum time.Duration
		for _, d := range durs {
			sum += d
		}
		b.ReportMetric(float64(sum.Nanoseconds())/float64(b.N), "timed-ns/op")
	})
}
