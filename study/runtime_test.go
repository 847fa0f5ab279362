package study

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// appliedRunner is a fake session that reports the runtime it applied.
type appliedRunner struct {
	verify.Runner
	a verify.Applied
}

func (r appliedRunner) Applied() verify.Applied { return r.a }

// TestProvenanceIsWhatRan: the report's runtime settings and every cell's
// verify provenance are what the sessions say they applied, not what the
// options asked for; the cell keys still hold what was asked, so a second
// run reuses every cell.
func TestProvenanceIsWhatRan(t *testing.T) {
	out := t.TempDir()
	opt := fakeOptions(t, out)
	opt.Sources = opt.Sources[:1]
	opt.Precisions = []convert.Precision{convert.FP32, convert.Int8, convert.Int4}
	ran := verify.Applied{Device: "cuda", EPLibrary: "/opt/ep/libfake_ep.so", ORTVersion: "9.8.7", Threads: 3}
	open := opt.Open
	opt.Open = func(p string) (verify.Runner, error) {
		r, err := open(p)
		if err != nil {
			return nil, err
		}
		return appliedRunner{r, ran}, nil
	}
	var log []string
	opt.Log = logLines(&log)
	r, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, r *Report) {
		t.Helper()
		s := r.Settings
		if got := (verify.Applied{Device: s.Device, EPLibrary: s.EPLibrary, ORTVersion: s.ORTVersion, Threads: s.Threads}); got != ran {
			t.Errorf("%s: settings record %+v, the sessions applied %+v", what, got, ran)
		}
		n := 0
		for _, c := range r.Cells {
			if c.Verify == nil {
				continue
			}
			n++
			if got := c.Verify.Provenance.Applied(); got != ran {
				t.Errorf("%s: %s provenance %+v, the sessions applied %+v", what, c.Precision, got, ran)
			}
		}
		if n != 2 {
			t.Errorf("%s: %d cells with a verify report, want 2", what, n)
		}
	}
	check("run", r)
	back, err := ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	check("report.json", back)
	md, err := os.ReadFile(filepath.Join(out, FileMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "9.8.7") || strings.Contains(string(md), "ONNX Runtime fake") {
		t.Errorf("report.md does not name the runtime that ran:\n%s", md)
	}

	log = nil
	again, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if countPrefix(log, "reused ") != 3 {
		t.Fatalf("second run: %q", log)
	}
	check("reused", again)
}

// TestStudyValidatesRuntime: each runtime setting out of range fails the
// study as verify would (verify.ErrOption, exit 2), before a model is
// opened or the report directory made.
func TestStudyValidatesRuntime(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Options)
	}{
		{"device", func(o *Options) { o.Device = "tpu" }},
		{"ep-library without cuda", func(o *Options) { o.EPLibrary = "x.so" }},
		{"threads", func(o *Options) { o.Threads = -1 }},
		{"batch", func(o *Options) { o.BatchSizes = []int{1, 0} }},
		{"huge batch", func(o *Options) { o.BatchSizes = []int{1 << 20} }},
		{"warmup", func(o *Options) { o.Warmup = -1 }},
		{"iters", func(o *Options) { o.Iters = -3 }},
		{"samples", func(o *Options) { o.Samples = -1 }},
		{"labels without images", func(o *Options) { o.Labels = "labels.txt" }},
	} {
		out := filepath.Join(t.TempDir(), "rep")
		opt := fakeOptions(t, out)
		opened := map[string]int{}
		opt.Open = fakeOpener(t, opened)
		c.set(&opt)
		_, err := Run(context.Background(), opt)
		if !errors.Is(err, verify.ErrOption) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("%s: err %v (class %v), want verify.ErrOption", c.name, err, fault.ClassOf(err))
		}
		if len(opened) != 0 {
			t.Errorf("%s: models opened: %v", c.name, opened)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: report directory made: %v", c.name, err)
		}
	}
}
