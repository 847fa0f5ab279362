package quantize

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
)

// BenchmarkCalibrationCost compares, in one process, plain FP32 inference
// of a model over N synthetic samples with the calibration pass over the
// same samples (extra outputs, statistics folded while the next batch
// runs). The model is $QUANTPACK_BENCH_ONNX (an export directory), N is
// $QUANTPACK_BENCH_SAMPLES (default 8); skipped without them.
//
//	QUANTPACK_BENCH_ONNX=vitb-fp32 go test ./quantize -run XXX -bench CalibrationCost -benchtime 1x
func BenchmarkCalibrationCost(b *testing.B) {
	dir := os.Getenv("QUANTPACK_BENCH_ONNX")
	if dir == "" {
		b.Skip("set QUANTPACK_BENCH_ONNX to an export directory")
	}
	n := 8
	if s := os.Getenv("QUANTPACK_BENCH_SAMPLES"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			b.Fatal(err)
		}
	}
	initORT(b)
	m, err := onnx.ReadFile(filepath.Join(dir, ModelFile))
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPlan(m, Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Samples: n, Batch: 1}
	cfg.normalize()
	source := func() Source {
		s, _, err := newSource(cfg, m, dir)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Run("fp32-inference", func(b *testing.B) {
		for range b.N {
			src := source()
			r, err := ortOpen(mustMarshal(b, m), dir)
			if err != nil {
				b.Fatal(err)
			}
			for {
				in, err := src.Next(context.Background())
				if err != nil {
					break
				}
				if _, err := r.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			r.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/sample")
	})
	b.Run("calibrate", func(b *testing.B) {
		for range b.N {
			if _, err := Collect(context.Background(), m, dir, p.Tensors, ortOpen, source()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/sample")
	})
}

func mustMarshal(b *testing.B, m *onnx.Model) []byte {
	x, err := m.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return x
}

// BenchmarkStatsAdd is the per-value cost of folding one activation
// tensor (ViT-Base's fc2 input at batch 1: 197×3072 values).
func BenchmarkStatsAdd(b *testing.B) {
	x := randF32(rand.New(rand.NewPCG(1, 1)), 197*3072, 1)
	s := NewStats()
	b.SetBytes(int64(4 * len(x)))
	b.ReportAllocs()
	for range b.N {
		s.Add(x)
	}
}
