package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// fakeChild makes childExe run a shell script that writes peakBytes as its
// own peak RSS (as ReportPeakRSS does) and prints stdout, and restores
// childExe after the test.
func fakeChild(t *testing.T, peakBytes, stdout string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake memory child is a shell script")
	}
	script := filepath.Join(t.TempDir(), "child.sh")
	body := "#!/bin/sh\necho " + peakBytes + " > \"$QUANTPACK_PEAK_RSS_FILE\"\ncat <<'EOF'\n" + stdout + "\nEOF\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	old := childExe
	childExe = func() (string, []string, error) { return script, nil, nil }
	t.Cleanup(func() { childExe = old })
}

// TestMemoryProbeGPU drives the parent side of the memory child with a
// fake child: the GPU figure the child prints reaches the ChildMemory on
// device cuda only, and a child whose report cannot be read costs the GPU
// figure, not the run.
func TestMemoryProbeGPU(t *testing.T) {
	ctx := context.Background()
	cuda := runtimeOptions{Runtime: verify.Runtime{Device: ort.DeviceCUDA, Threads: 1}}
	cpu := runtimeOptions{Runtime: verify.Runtime{Device: ort.DeviceCPU, Threads: 1}}

	fakeChild(t, "52428800", `{"model": "m.onnx", "batch": 4, "peak_rss_bytes": 52428800, "rss_bytes": 1, "gpu_bytes": 734003200, "gpu_device": "0: Fake H100"}`)
	m, err := cuda.memoryProbe()(ctx, "m.onnx", 4)
	if err != nil || !m.SelfReported || m.PeakBytes != 50<<20 || m.GPUBytes == nil || *m.GPUBytes != 700<<20 || m.GPUDevice != "0: Fake H100" {
		t.Fatalf("cuda model child: %+v, %v", m, err)
	}
	for _, c := range []struct {
		name  string
		o     runtimeOptions
		model string
	}{{"cpu", cpu, "m.onnx"}, {"runtime child", cuda, ""}} {
		m, err = c.o.memoryProbe()(ctx, c.model, 1)
		if err != nil || m.GPUBytes != nil || m.GPUNote != "" {
			t.Fatalf("%s: GPU figure %+v, %v", c.name, m, err)
		}
	}

	// The child could not reach NVML: its note travels.
	fakeChild(t, "1", `{"peak_rss_bytes": 1, "rss_bytes": 1, "gpu_bytes": null, "gpu_note": "ort: NVML unavailable: nvml init"}`)
	m, err = cuda.memoryProbe()(ctx, "m.onnx", 1)
	if err != nil || m.GPUBytes != nil || m.GPUNote != "ort: NVML unavailable: nvml init" {
		t.Fatalf("child without NVML: %+v, %v", m, err)
	}

	fakeChild(t, "1", "garbage")
	m, err = cuda.memoryProbe()(ctx, "m.onnx", 1)
	if err != nil || m.GPUBytes != nil || !strings.Contains(m.GPUNote, "could not be read") || m.PeakBytes != 1 {
		t.Fatalf("unreadable report: %+v, %v", m, err)
	}
}

// TestOwnGPUMemory is the memory child's query on this machine: no GPU
// context in the test process, so an NVML error of exit class 6, never a
// panic; with a GPU in use, a positive figure.
func TestOwnGPUMemory(t *testing.T) {
	v, dev, err := ownGPUMemory()
	switch {
	case err == nil && (v <= 0 || dev == ""):
		t.Fatalf("%d bytes on %q", v, dev)
	case err != nil && !errors.Is(err, ort.ErrNVMLUnavailable) && !errors.Is(err, ort.ErrNoGPUProcess):
		t.Fatalf("err %v", err)
	}
}
