package verify

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
)

// slowRunner delays each run of a fake model.
type slowRunner struct {
	*fakeRunner
	delay time.Duration
}

func (s slowRunner) Run(ctx context.Context, in []Tensor) ([]Tensor, error) {
	time.Sleep(s.delay)
	return s.fakeRunner.Run(ctx, in)
}

func storeReport(t *testing.T, r *Report) (string, *Report) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "prev.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := LoadReport(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, back
}

// TestBaselineRegression: the same export passes against its own report; a
// slower or larger candidate fails with the gate named; a report from
// another machine is refused for latency before anything runs.
func TestBaselineRegression(t *testing.T) {
	bdir, cdir := fakeModels(t, 4000, 1000)
	run := func(cdir string, candDelay time.Duration, prev *Report, path string, g RegressionGates) (*Report, error) {
		base := slowRunner{newFake(16, "logits", 6, 1), 2 * time.Millisecond}
		cand := slowRunner{newFake(16, "logits", 6, 2), candDelay}
		return Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
			Runtime:  Runtime{Open: openFakes(bdir, base, cand), BatchSizes: []int{1, 2}, Warmup: 1, Iters: 8, Device: "cpu", ORTVersion: "fake", Threads: 1},
			Inputs:   Inputs{Samples: 6},
			Previous: prev, PreviousPath: path, Regression: g})
	}
	first, err := run(cdir, time.Millisecond, nil, "", RegressionGates{})
	if err != nil {
		t.Fatal(err)
	}
	path, prev := storeReport(t, first)
	// Timing on a shared machine: a sleep of 1 ms takes 1–1.5 ms, so +100%
	// is the tolerance that the same export never exceeds and a 6× slower
	// one always does.
	lat, size, agree := 100.0, 0.0, 0.0
	gates := RegressionGates{MaxLatencyPct: &lat, MaxSizePct: &size, MaxAgreementPct: &agree}
	same, err := run(cdir, time.Millisecond, prev, path, gates)
	if err != nil {
		t.Fatalf("the same export against its own report: %v", err)
	}
	reg := same.Regression
	if reg == nil || !reg.SameMachine || len(reg.Rows) != 2+1+1 {
		t.Fatalf("regression %+v", reg)
	}
	if len(same.Gates.Passed) != 4 {
		t.Fatalf("passed gates %q", same.Gates.Passed)
	}
	var md strings.Builder
	if err := same.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "### Against the previous report") || !strings.Contains(md.String(), "block-p50 spread") {
		t.Fatalf("markdown lacks the side-by-side table:\n%s", md.String())
	}

	slow, err := run(cdir, 6*time.Millisecond, prev, path, gates)
	assertGateFailed(t, slow, err, "max-latency-regression", 2)

	_, bigger := fakeModels(t, 4000, 1500)
	// The bigger candidate lives in another directory; its runner is the
	// "candidate" fake because openFakes keys on the baseline's directory.
	big, err := run(bigger, time.Millisecond, prev, path, RegressionGates{MaxSizePct: &size})
	assertGateFailed(t, big, err, "max-size-regression", 1)
	if c := big.Regression.Rows[2].Change; c != 50 {
		t.Fatalf("size change %v%%, want 50", c)
	}

	// Another machine: refused for latency (exit 2) before any model opens.
	other := *prev
	other.Provenance.CPUModel = "some other CPU"
	opened := false
	_, err = Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime:  Runtime{Device: "cpu", ORTVersion: "fake", Threads: 1, Open: func(string) (Runner, error) { opened = true; return nil, errors.New("opened") }},
		Previous: &other, PreviousPath: path, Regression: gates})
	if !errors.Is(err, ErrOtherMachine) || fault.ClassOf(err) != fault.Usage || opened || !strings.Contains(err.Error(), "some other CPU") {
		t.Fatalf("other machine: %v (opened %v)", err, opened)
	}
	gates.AllowOtherMachine = true
	allowed, err := run(cdir, time.Millisecond, &other, path, gates)
	if err != nil || allowed.Regression.SameMachine || len(allowed.Regression.Differences) != 1 {
		t.Fatalf("--allow-other-machine: %v, %+v", err, allowed.Regression)
	}
	// Size and agreement gates need no fingerprint match.
	if _, err := run(cdir, time.Millisecond, &other, path, RegressionGates{MaxSizePct: &size}); err != nil {
		t.Fatalf("size gate against another machine: %v", err)
	}
	// A regression gate without a previous report is a usage error.
	if _, err := run(cdir, time.Millisecond, nil, "", RegressionGates{MaxSizePct: &size}); !errors.Is(err, ErrOption) {
		t.Fatalf("gate without --baseline-report: %v", err)
	}
}

func assertGateFailed(t *testing.T, r *Report, err error, gate string, n int) {
	t.Helper()
	var ge *GateError
	if !errors.As(err, &ge) || fault.ClassOf(err) != fault.Gate {
		t.Fatalf("%s: err %v, want a gate failure", gate, err)
	}
	if len(ge.Failed) != n {
		t.Fatalf("%s: failed %q, want %d", gate, ge.Failed, n)
	}
	for _, f := range ge.Failed {
		if GateName(f) != gate {
			t.Fatalf("failed gate %q, want %s", f, gate)
		}
	}
	if r == nil || r.Regression == nil {
		t.Fatal("no report with the failure")
	}
}

func TestLoadReportRefusesOtherDocuments(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"study.json": `{"format":"quantpack-study/1"}`,
		"bad.json":   `{"format":`,
		"empty.json": `{"format":"quantpack-verify/1","candidate":{"batches":[]}}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadReport(p); !errors.Is(err, ErrPreviousReport) || fault.ClassOf(err) != fault.Invalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadReport(filepath.Join(dir, "missing.json")); !errors.Is(err, ErrPreviousReport) {
		t.Errorf("missing: %v", err)
	}
	if _, err := LoadReport(dir); !errors.Is(err, ErrPreviousReport) || fault.ClassOf(err) != fault.Invalid {
		t.Errorf("a directory: %v", err)
	}
}

// FuzzParseReport: any bytes as --baseline-report either fail with
// ErrPreviousReport or give a report the regression code can use without
// panicking.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"format":"quantpack-verify/1","candidate":{"size_bytes":10,"batches":[{"batch":1,"latency_ms":{"p50":1}}]}}`))
	f.Add([]byte(`{"format":"quantpack-verify/1","candidate":{"batches":[{"batch":1,"latency_ms":{"p50":-1}}]}}`))
	f.Add([]byte(`{"format":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		prev, err := parseReport("prev.json", b)
		if err != nil {
			if !errors.Is(err, ErrPreviousReport) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		cur := &Report{Candidate: ModelReport{SizeBytes: 5, Batches: []BatchReport{{Batch: 1, LatencyMs: LatencyStats{P50: 2}}}}}
		cur.Gates = GateResults{Passed: []string{}, Failed: []string{}}
		lim := 1.0
		reg := compareWithPrevious(cur, prev, "prev.json", RegressionGates{MaxLatencyPct: &lim, MaxSizePct: &lim, MaxAgreementPct: &lim})
		if _, err := json.Marshal(reg); err != nil {
			t.Fatalf("regression not encodable: %v", err)
		}
	})
}
