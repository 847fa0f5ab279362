package tune

import (
	"context"
	"os"
	"testing"

	"github.com/quantpack/quantpack/convert"
)

// BenchmarkSensitivity runs the sensitivity of vit-28 at int4 over 60
// calibration images (or of $QUANTPACK_BENCH_MODEL over 64 synthetic
// inputs, e.g. a synthesized DeiT-Tiny), with the variant graphs' weights
// in the shared external data file and inline, side by side in one
// process so their ratio holds on a loaded machine. cpu-s/op is the
// process's CPU time per run (all threads).
func BenchmarkSensitivity(b *testing.B) {
	requireORT(b)
	model, calib := trained(b)
	samples := testSamples
	if m := os.Getenv("QUANTPACK_BENCH_MODEL"); m != "" {
		model, calib, samples = m, "", 64
	}
	for _, c := range []struct {
		name     string
		external int64
	}{{"external", 0}, {"inline", -1}} {
		b.Run(c.name, func(b *testing.B) {
			var cpu float64
			for b.Loop() {
				r, err := Sensitivity(context.Background(), SensitivityOptions{Src: model, Precision: convert.Int4, Images: calib,
					Samples: samples, Open: openBytes, externalThreshold: c.external})
				if err != nil {
					b.Fatal(err)
				}
				cpu += r.Timing.CPU
			}
			b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
		})
	}
}
