package convert

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/quant"
)

// TestAWQFastGapFixtures converts the trained fixtures with awq twice, once
// with the full grid (awqFullSearch) and once with the fast search, on the
// same calibration statistics (the first 128 images of calib/, as
// docs/accuracy.md's table), and compares every group: the fast choice's
// real estimate (its weighted SQNR in the manifest) may exceed the full
// grid's optimum by at most quant.AWQFastMaxGap. A group whose value rows
// carry the output dense's scales searches a matrix that depends on that
// choice; the comparison is still between what each artifact writes.
//
// QUANTPACK_AWQ_GAP_MODEL=DIR (and optionally QUANTPACK_AWQ_GAP_SAMPLES)
// adds another checkpoint, e.g. `quantpack synth --preset
// vit-base-patch16-224`, for the measurement in docs/accuracy.md.
func TestAWQFastGapFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates and converts each model twice")
	}
	tr := testenv.Fixtures(t, "trained")
	type model struct {
		dir     string
		samples int
		prec    Precision
	}
	models := []model{{filepath.Join(tr, "vit-28"), 128, Int4}, {filepath.Join(tr, "mobilevit-dev"), 128, Int4}, {filepath.Join(tr, "vit-28"), 128, NF4}}
	if d := os.Getenv("QUANTPACK_AWQ_GAP_MODEL"); d != "" {
		n, _ := strconv.Atoi(os.Getenv("QUANTPACK_AWQ_GAP_SAMPLES"))
		models = append(models, model{d, max(n, 1), Int4})
	}
	for _, m := range models {
		cal := awqCalib(t, m.samples)
		conv := func(full bool) *AWQScheme {
			t.Helper()
			old := awqFullSearch
			awqFullSearch = full
			defer func() { awqFullSearch = old }()
			man, err := Convert(context.Background(), m.dir, filepath.Join(t.TempDir(), "a"),
				Options{Precision: m.prec, Method: quant.MethodAWQ, BlockSize: 128, Calib: cal, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			return man.Scheme.AWQ
		}
		full, fast := conv(true), conv(false)
		if full.Search != awqSearchFull || fast.Search != awqSearchFast || len(full.Groups) != len(fast.Groups) {
			t.Fatalf("%s: searches %q / %q, %d / %d groups", m.dir, full.Search, fast.Search, len(full.Groups), len(fast.Groups))
		}
		var worst float64
		same, evals, fullEvals := 0, 0, 0
		for i, gf := range full.Groups {
			gs := fast.Groups[i]
			evals, fullEvals = evals+gs.Evaluated, fullEvals+gf.Evaluated
			// SQNR = 10·log10(signal/err) with the same signal: the
			// estimates' ratio is 10^(ΔdB/10).
			gap := math.Pow(10, (gf.WeightedSQNRdB-gs.WeightedSQNRdB)/10) - 1
			worst = max(worst, gap)
			if gs.Alpha == gf.Alpha {
				same++
			} else {
				t.Logf("%s %s %s: fast α=%v full α=%v, gap %.3f%%", filepath.Base(m.dir), m.prec, gf.Linears[0], gs.Alpha, gf.Alpha, 100*gap)
			}
			if gap > quant.AWQFastMaxGap {
				t.Errorf("%s %s: fast α=%v (%.4f dB) vs full α=%v (%.4f dB): gap %.2f%% > %.0f%%", filepath.Base(m.dir), gf.Linears[0],
					gs.Alpha, gs.WeightedSQNRdB, gf.Alpha, gf.WeightedSQNRdB, 100*gap, 100*quant.AWQFastMaxGap)
			}
		}
		t.Logf("%s %s: %d groups, %d same α, worst gap %.4f%%; weighted SQNR full %.3f dB, fast %.3f dB; base-method evaluations %d (full %d)",
			filepath.Base(m.dir), m.prec, len(full.Groups), same, 100*worst, full.WeightedSQNRdB, fast.WeightedSQNRdB, evals, fullEvals)
	}
}

// BenchmarkAWQConvert converts QUANTPACK_AWQ_BENCH_MODEL (int4, block 128,
// one thread) with rtn, hqq, and awq over hqq with the full grid and the
// fast search, calibrated on QUANTPACK_AWQ_BENCH_SAMPLES images of the
// trained fixtures' calib/ (default 128). Each mode runs in its own process
// under /usr/bin/time for docs/accuracy.md's CPU-time table
// (scripts/awq_table.sh cpu); the full grid has no command-line switch.
func BenchmarkAWQConvert(b *testing.B) {
	dir := os.Getenv("QUANTPACK_AWQ_BENCH_MODEL")
	if dir == "" {
		b.Skip("QUANTPACK_AWQ_BENCH_MODEL not set")
	}
	n, err := strconv.Atoi(os.Getenv("QUANTPACK_AWQ_BENCH_SAMPLES"))
	if err != nil {
		n = 128
	}
	for _, mode := range []string{"rtn", "hqq", "awq-full", "awq-fast"} {
		b.Run(mode, func(b *testing.B) {
			opt := Options{Precision: Int4, BlockSize: 128, Threads: 1}
			switch mode {
			case "rtn":
				opt.Method = quant.MethodRTN
			case "hqq":
				opt.Method = quant.MethodHQQ
			default:
				opt.Method, opt.Calib = quant.MethodAWQ, awqCalib(b, n)
				old := awqFullSearch
				awqFullSearch = mode == "awq-full"
				defer func() { awqFullSearch = old }()
			}
			for b.Loop() {
				m, err := Convert(context.Background(), dir, filepath.Join(b.TempDir(), "a"), opt)
				if err != nil {
					b.Fatal(err)
				}
				if a := m.Scheme.AWQ; a != nil {
					b.ReportMetric(a.WeightedSQNRdB, "wSQNR-dB")
				}
			}
		})
	}
}
