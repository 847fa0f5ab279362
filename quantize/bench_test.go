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
// moves with the other processes' share, the CPU ratio much less), with
// and without the sessions' creation ("steady": what the ratio tends to
// over many samples, such as the 512). The
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
	// infer runs model over every sample of a fresh source, session
	// included (Collect opens its own); open only opens and closes one, so
	// that the per-sample cost, which is what 512 images are made of, can
	// be told from the session's creation.
	infer := func(model []byte, run bool) {
		src := source()
		r, err := ortOpen(model, dir)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		for run {
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
	const (
		openPlain = iota
		fp32
		openExtra
		extraOutputs
		calibrate
		phases
	)
	var wall, cpu [phases]time.Duration
	for range b.N {
		for k, phase := range [phases]func(){
			func() { infer(plain, false) },
			func() { infer(plain, true) },
			func() { infer(extra, false) },
			func() { infer(extra, true) },
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
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
	b.ReportMetric(per(wall[fp32]), "fp32-ms/sample")
	b.ReportMetric(per(wall[calibrate]), "calib-ms/sample")
	b.ReportMetric(ratio(wall[calibrate], wall[fp32]), "wall-ratio")
	b.ReportMetric(ratio(cpu[calibrate], cpu[fp32]), "cpu-ratio")
	// Per sample, the sessions' creation taken out of both sides: the
	// ratio that many samples tend to.
	b.ReportMetric(ratio(wall[calibrate]-wall[openExtra], wall[fp32]-wall[openPlain]), "steady-wall-ratio")
	b.ReportMetric(ratio(cpu[calibrate]-cpu[openExtra], cpu[fp32]-cpu[openPlain]), "steady-cpu-ratio")
	b.ReportMetric(ratio(cpu[extraOutputs]-cpu[openExtra], cpu[fp32]-cpu[openPlain]), "extra-outputs-steady-cpu-ratio")
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
