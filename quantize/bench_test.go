package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/quantpack/quantpack/formats/onnx"
)

// BenchmarkCalibrationCost compares, in one process and one iteration,
// plain FP32 inference of a model over N synthetic samples with the
// calibration pass over the same samples (extra outputs, statistics folded
// while the next batch runs), and with the extra outputs alone (ONNX
// Runtime's share of the overhead). It reports the ratios to FP32 of wall
// time and of process CPU time (user+system; under load the wall ratio
// moves with the other processes' share, the CPU ratio much less). The
// model is $QUANTPACK_BENCH_ONNX (an export directory), N is
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
	if err := cfg.normalize(); err != nil {
		b.Fatal(err)
	}
	source := func() Source {
		s, _, err := newSource(cfg, m, dir)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	// infer runs model over every sample of a fresh source; the session is
	// opened before the clock starts, as Collect's is not: Collect's time
	// includes its session, so infer's does too.
	infer := func(model []byte) {
		src := source()
		r, err := ortOpen(model, dir)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		for {
			in, err := src.Next(context.Background())
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Run(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
	}
	plain := mustMarshal(b, m)
	extra, err := calibrationModel(m, p.Tensors)
	if err != nil {
		b.Fatal(err)
	}
	var wall, cpu [3]time.Duration
	for range b.N {
		for k, phase := range []func(){
			func() { infer(plain) },
			func() { infer(extra) },
			func() {
				if _, err := Collect(context.Background(), m, dir, p.Tensors, ortOpen, source()); err != nil {
					b.Fatal(err)
				}
			},
		} {
			runtime.GC()
			t0, c0 := time.Now(), cpuTime()
			phase()
			wall[k] += time.Since(t0)
			cpu[k] += cpuTime() - c0
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N*n) }
	b.ReportMetric(per(wall[0]), "fp32-ms/sample")
	b.ReportMetric(per(wall[2]), "calib-ms/sample")
	b.ReportMetric(float64(wall[2])/float64(wall[0]), "wall-ratio")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "cpu-ratio")
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "extra-outputs-wall-ratio")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "extra-outputs-cpu-ratio")
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
