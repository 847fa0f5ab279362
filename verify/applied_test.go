package verify

import (
	"context"
	"testing"
)

// appliedFake is a fakeRunner that reports the settings it ran with.
type appliedFake struct {
	*fakeRunner
	a Applied
}

func (f *appliedFake) Applied() Applied { return f.a }

// TestReportTakesAppliedSettings: the report's device, runtime version and
// threads are what the sessions applied, not what the caller wrote in
// Options; runners that cannot say leave the caller's values.
func TestReportTakesAppliedSettings(t *testing.T) {
	bdir, cdir := fakeModels(t, 10, 10)
	ran := Applied{Device: "cuda", EPLibrary: "/x/libep.so", ORTVersion: "9.9.9", Threads: 3}
	base := &appliedFake{newFake(16, "logits", 6, 1), ran}
	cand := &appliedFake{newFake(16, "logits", 6, 1), ran}
	rep, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Open: openFakes(bdir, base, cand), Iters: 1, Device: "cpu", ORTVersion: "1.0", Threads: 8},
		Inputs:  Inputs{Samples: 2}})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Provenance
	if rep.Device != "cuda" || rep.ORTVersion != "9.9.9" || p.Device != "cuda" || p.EPLibrary != "/x/libep.so" ||
		p.ORTVersion != "9.9.9" || p.Threads != 3 {
		t.Fatalf("report %q %q, provenance %+v; want what the sessions applied %+v", rep.Device, rep.ORTVersion, p, ran)
	}

	cand.a.Threads = 4
	if _, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Open: openFakes(bdir, base, cand), Iters: 1},
		Inputs:  Inputs{Samples: 2}}); err == nil {
		t.Fatal("models run with different settings were compared")
	}

	plain, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Open: openFakes(bdir, newFake(16, "logits", 6, 1), newFake(16, "logits", 6, 1)), Iters: 1, Device: "cpu", ORTVersion: "1.0", Threads: 8},
		Inputs:  Inputs{Samples: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Device != "cpu" || plain.Provenance.Threads != 8 || plain.ORTVersion != "1.0" {
		t.Fatalf("without AppliedReporter: %q %+v", plain.Device, plain.Provenance)
	}
}
