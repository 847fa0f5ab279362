package verify

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// gpuProbe is a MemoryProbe whose model children report gpu(model, batch)
// bytes, or the note when gpu returns a negative figure.
func gpuProbe(gpu func(model string, batch int) int64, note string) MemoryProbe {
	return func(_ context.Context, model string, batch int) (ChildMemory, error) {
		m := ChildMemory{PeakBytes: 50 << 20, SelfReported: true}
		if model == "" {
			return m, nil
		}
		m.PeakBytes += int64(batch) << 20
		if v := gpu(model, batch); v >= 0 {
			m.GPUBytes, m.GPUDevice = &v, "0: Fake GPU"
		} else {
			m.GPUNote = note
		}
		return m, nil
	}
}

func compareWithProbe(t *testing.T, device string, probe MemoryProbe) *Report {
	t.Helper()
	bdir, cdir := fakeModels(t, 10, 10)
	opt := Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Iters: 1, BatchSizes: []int{1, 4}, Device: device, Open: openFakes(bdir, newFake(16, "logits", 6, 1), newFake(16, "logits", 6, 1)), Memory: probe}}
	rep, err := Compare(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestCompareGPUMemory(t *testing.T) {
	// The baseline holds 300 MiB + 10 MiB per sample, the candidate a
	// third of that: each child's figure must land on its own model and
	// batch size, and the headline repeat the first batch size.
	gpu := func(model string, batch int) int64 {
		v := int64(300+10*batch) << 20
		if filepath.Base(filepath.Dir(model)) == "cand" {
			v /= 3
		}
		return v
	}
	rep := compareWithProbe(t, deviceCUDA, gpuProbe(gpu, ""))
	for _, c := range []struct {
		got  *float64
		want float64
	}{
		{rep.Baseline.Batches[0].GPUMB, 310}, {rep.Baseline.Batches[1].GPUMB, 340}, {rep.Baseline.GPUMB, 310},
		{rep.Candidate.Batches[1].GPUMB, 340.0 / 3}, {rep.Candidate.GPUMB, 310.0 / 3},
	} {
		// MiB from bytes: v/3 is rounded down to whole bytes, 2⁻²⁰ MiB at most.
		if c.got == nil || *c.got < c.want-1e-6 || *c.got > c.want {
			t.Fatalf("GPU MiB %v, want %g (report %+v)", c.got, c.want, rep.Candidate.Batches)
		}
	}
	if rep.Memory.GPUMethod != GPUMethodNVML || rep.Memory.GPUNote != nvmlCaveat {
		t.Fatalf("memory %+v", rep.Memory)
	}
	// RSS is unaffected.
	if *rep.Baseline.Batches[1].PeakRSSMB != 4 {
		t.Fatalf("RSS %v", *rep.Baseline.Batches[1].PeakRSSMB)
	}
	var md strings.Builder
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| peak RSS MiB | GPU MiB |", "| 1.0 | 310.0 |", "| 4.0 | 113.3 |", "GPU memory: NVML's"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestCompareGPUMemoryMissing(t *testing.T) {
	const nvmlMissing = "ort: NVML unavailable: no driver"
	none := func(string, int) int64 { return -1 }
	rep := compareWithProbe(t, deviceCUDA, gpuProbe(none, nvmlMissing))
	if rep.Baseline.GPUMB != nil || rep.Candidate.Batches[1].GPUMB != nil {
		t.Fatal("GPU figures without NVML")
	}
	// The child's reason reaches the report once, not once per child.
	if rep.Memory.GPUMethod != "" || rep.Memory.GPUNote != "not measured: "+nvmlMissing {
		t.Fatalf("memory %+v", rep.Memory)
	}

	// Only batch 4 measured: the figures that exist are kept, the note
	// counts the rest.
	some := func(_ string, b int) int64 {
		if b == 4 {
			return 1 << 30
		}
		return -1
	}
	rep = compareWithProbe(t, deviceCUDA, gpuProbe(some, "ort: NVML lists no GPU memory for the process"))
	if rep.Baseline.GPUMB != nil || rep.Baseline.Batches[1].GPUMB == nil || *rep.Baseline.Batches[1].GPUMB != 1024 {
		t.Fatalf("baseline %+v", rep.Baseline.Batches)
	}
	if rep.Memory.GPUMethod != GPUMethodNVML || !strings.Contains(rep.Memory.GPUNote, "2 of 4 children not measured") {
		t.Fatalf("memory %+v", rep.Memory)
	}
}

func TestCompareGPUMemoryOnCPU(t *testing.T) {
	// A child that reported GPU bytes on the CPU (it should not) is not
	// believed: GPU figures belong to device cuda only.
	rep := compareWithProbe(t, "cpu", gpuProbe(func(string, int) int64 { return 1 }, ""))
	if rep.Baseline.GPUMB != nil || rep.Candidate.GPUMB != nil || rep.Baseline.Batches[1].GPUMB != nil {
		t.Fatal("GPU figures on the CPU")
	}
	if rep.Memory.GPUMethod != "" || !strings.Contains(rep.Memory.GPUNote, "device cpu") {
		t.Fatalf("memory %+v", rep.Memory)
	}
	var md strings.Builder
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "GPU MiB") || strings.Contains(md.String(), "GPU memory:") {
		t.Fatalf("CPU Markdown mentions the GPU:\n%s", md.String())
	}

	bdir, cdir := fakeModels(t, 10, 10)
	rep, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Iters: 1, Device: deviceCUDA, Open: openFakes(bdir, newFake(16, "logits", 6, 1), newFake(16, "logits", 6, 1))}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Baseline.GPUMB != nil || rep.Memory.GPUNote == "" {
		t.Fatalf("no memory probe: %+v", rep.Memory)
	}
}

func TestMeasureInChildGPU(t *testing.T) {
	bdir, _ := fakeModels(t, 10, 10)
	model := filepath.Join(bdir, ModelFile)
	f := newFake(16, "logits", 6, 1)
	open := func(string) (Runner, error) { return f, nil }
	query := func() (int64, string, error) {
		if f.closed {
			return 0, "", errors.New("queried after Close")
		}
		if f.batches[3] != childRuns {
			return 0, "", errors.New("queried before the runs")
		}
		return 123 << 20, "0: Fake GPU", nil
	}
	m, err := MeasureInChild(context.Background(), open, model, 3, 1, query)
	if err != nil {
		t.Fatal(err)
	}
	if m.GPUBytes == nil || *m.GPUBytes != 123<<20 || m.GPUDevice != "0: Fake GPU" || m.GPUNote != "" || !f.closed {
		t.Fatalf("measurement %+v (note %q), closed %v", m, m.GPUNote, f.closed)
	}

	// A failing query is a note, not an error.
	g := newFake(16, "logits", 6, 1)
	fail := func() (int64, string, error) { return 0, "", errors.New("ort: NVML unavailable") }
	m, err = MeasureInChild(context.Background(), func(string) (Runner, error) { return g, nil }, model, 1, 1, fail)
	if err != nil || m.GPUBytes != nil || m.GPUNote != "ort: NVML unavailable" {
		t.Fatalf("failing query: %+v, %v", m, err)
	}

	// No query (CPU), or no model (the runtime child): no GPU figure.
	for _, c := range []struct {
		model string
		q     GPUQuery
	}{{model, nil}, {"", query}} {
		m, err = MeasureInChild(context.Background(), func(string) (Runner, error) { return newFake(16, "logits", 6, 1), nil }, c.model, 1, 1, c.q)
		if err != nil || m.GPUBytes != nil || m.GPUNote != "" {
			t.Fatalf("model %q: %+v, %v", c.model, m, err)
		}
	}
}
