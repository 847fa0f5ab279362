package verify

import (
	"errors"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// TestRuntimeValidate: every runtime setting and input count out of range
// is ErrOption (exit 2) naming the flag that sets it; the defaults and the
// edges of each range pass.
func TestRuntimeValidate(t *testing.T) {
	ok := Runtime{Device: "cpu", BatchSizes: []int{1, maxBatch}, Warmup: 0, Iters: 1}
	if err := ok.Validate(); err != nil {
		t.Fatalf("edges: %v", err)
	}
	var zero Runtime
	if err := zero.Normalize(); err != nil || zero.Iters != DefaultIters || len(zero.BatchSizes) != 1 {
		t.Fatalf("defaults: %+v, %v", zero, err)
	}
	cuda := Runtime{Device: "cuda", EPLibrary: "x.so", Threads: 2, BatchSizes: []int{8}, Iters: 3}
	if err := cuda.Validate(); err != nil {
		t.Fatalf("cuda with a plugin: %v", err)
	}
	for _, c := range []struct {
		flag string
		rt   Runtime
	}{
		{"--device", Runtime{Device: "tpu", BatchSizes: []int{1}, Iters: 1}},
		{"--ep-library", Runtime{Device: "cpu", EPLibrary: "x.so", BatchSizes: []int{1}, Iters: 1}},
		{"--threads", Runtime{Threads: -1, BatchSizes: []int{1}, Iters: 1}},
		{"--batch", Runtime{BatchSizes: []int{1, 0}, Iters: 1}},
		{"--batch", Runtime{BatchSizes: []int{maxBatch + 1}, Iters: 1}},
		{"--batch", Runtime{Iters: 1}},
		{"--warmup", Runtime{Warmup: -1, BatchSizes: []int{1}, Iters: 1}},
		{"--iters", Runtime{BatchSizes: []int{1}, Iters: 0}},
	} {
		err := c.rt.Validate()
		if !errors.Is(err, ErrOption) || fault.ClassOf(err) != fault.Usage || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: err %v, want ErrOption naming %s", c.rt, err, c.flag)
		}
	}
	for _, c := range []struct {
		flag string
		in   Inputs
	}{{"--samples", Inputs{Samples: -2}}, {"--labels", Inputs{Samples: 1, Labels: "l.txt"}}} {
		err := c.in.Normalize()
		if !errors.Is(err, ErrOption) || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: err %v, want ErrOption naming %s", c.in, err, c.flag)
		}
	}
	if err := (Inputs{Images: "dir", Labels: "l.txt", Samples: 1}).Validate(); err != nil {
		t.Errorf("labels with images: %v", err)
	}
}
