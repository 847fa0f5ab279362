package tune

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/quantpack/quantpack/convert"
)

// TestSensitivityReportIndependentOfThreadsAndData: the report is the
// same, to the byte, whether the variant sessions run side by side on one
// intra-op thread each or one at a time on two threads (the FP32 runs on
// two threads in both), or everything on one thread, and whether the
// variant graphs keep their weights in the shared external data file or
// inline. Only the timing block may differ. (ONNX Runtime's CPU kernels
// split work by output rows and columns, never along a reduction, so the
// thread count does not reach the arithmetic; the external data holds the
// same bytes as the inline graphs, TestVariantPoolMatchesInline.)
func TestSensitivityReportIndependentOfThreadsAndData(t *testing.T) {
	requireORT(t)
	model, calib := trained(t)
	run := func(workers, threads int, external int64) []byte {
		t.Helper()
		r, err := Sensitivity(context.Background(), SensitivityOptions{Src: model, Precision: convert.Int4, Images: calib,
			Samples: 20, Workers: workers, Threads: threads, Open: openBytes, externalThreshold: external})
		if err != nil {
			t.Fatal(err)
		}
		if r.Timing.Workers != workers || r.Timing.Threads != threads/workers {
			t.Fatalf("ran %d workers × %d threads, asked for %d sharing %d", r.Timing.Workers, r.Timing.Threads, workers, threads)
		}
		r.Timing = Timing{}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	side := run(2, 2, 0)
	if b := run(1, 2, 0); !bytes.Equal(side, b) {
		t.Errorf("2 workers × 1 thread and 1 worker × 2 threads give different reports:\n%s\n%s", side, b)
	}
	if b := run(1, 1, 0); !bytes.Equal(side, b) {
		t.Errorf("2 workers × 1 thread and 1 thread in all give different reports:\n%s\n%s", side, b)
	}
	if b := run(2, 2, -1); !bytes.Equal(side, b) {
		t.Errorf("external data and inline graphs give different reports:\n%s\n%s", side, b)
	}
}
