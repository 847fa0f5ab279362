//go:build cgo

package ort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// osThreads lists this process's thread ids.
func osThreads(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("cannot list threads: %v", err)
	}
	ids := make(map[string]bool, len(ents))
	for _, e := range ents {
		ids[e.Name()] = true
	}
	return ids
}

// ONNX Runtime's intra-op pool has n-1 threads of its own (the caller is
// the n-th); they start with the session and end with it. Threads alive
// while the session is open and gone after Close are exactly the pool (Go
// keeps its own threads), so counting them shows IntraOpThreads took effect.
func TestIntraOpThreadsApplied(t *testing.T) {
	needORT(t)
	for _, n := range []int{1, 2, 5} {
		s, err := OpenBytes(scaleModel(), Options{IntraOpThreads: n})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Options().IntraOpThreads; got != n {
			t.Fatalf("Options().IntraOpThreads = %d, want %d", got, n)
		}
		open := osThreads(t)
		s.Close()
		after := osThreads(t)
		pool := 0
		for id := range open {
			if !after[id] {
				pool++
			}
		}
		if pool != n-1 {
			t.Fatalf("IntraOpThreads %d: %d pool threads, want %d", n, pool, n-1)
		}
	}
}

func TestOptionsRecorded(t *testing.T) {
	needORT(t)
	s := openBytes(t, scaleModel(), Options{InterOpThreads: 2})
	o := s.Options()
	if o.OptLevel != OptAll || o.Device != DeviceCPU || o.InterOpThreads != 2 {
		t.Fatalf("Options() = %+v", o)
	}
	for _, lvl := range []int{OptDisable, OptBasic, OptExtended, OptAll} {
		s := openBytes(t, newLinear(3, 2).model("", "batch", 2), Options{OptLevel: lvl})
		if s.Options().OptLevel != lvl {
			t.Fatalf("OptLevel %d recorded as %d", lvl, s.Options().OptLevel)
		}
	}
}

func TestProfilePlacement(t *testing.T) {
	needORT(t)
	l := newLinear(5, 3)
	prefix := filepath.Join(t.TempDir(), "prof")
	s := openBytes(t, l.model("", "batch", 3), Options{ProfilePrefix: prefix, OptLevel: OptDisable})
	if s.ProfileFile() != "" {
		t.Fatalf("ProfileFile before the end: %q", s.ProfileFile())
	}
	x := input(2, 5, 0)
	for i := 0; i < 3; i++ {
		if _, err := s.Run(context.Background(), []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{2, 5}, F32: x}}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.Placement()
	if err != nil {
		t.Fatal(err)
	}
	file := s.ProfileFile()
	if !strings.HasPrefix(file, prefix) || !strings.HasSuffix(file, ".json") {
		t.Fatalf("profile file %q, prefix %q", file, prefix)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	// Optimizations are off, so the three nodes run as written.
	want := []string{"matmul MatMul " + CPUProvider, "add Add " + CPUProvider, "argmax ArgMax " + CPUProvider}
	if fmt.Sprint(p.Nodes) != fmt.Sprint(want) || p.Providers[CPUProvider] != 3 || len(p.Providers) != 1 || p.FellBackToCPU != 0 {
		t.Fatalf("placement %+v, want nodes %v", p, want)
	}
	if again, err := s.EndProfiling(); err != nil || again != file {
		t.Fatalf("EndProfiling again = %q, %v", again, err)
	}
	if err := s.Close(); err != nil || s.ProfileFile() != file {
		t.Fatalf("Close: %v, profile %q", err, s.ProfileFile())
	}
}

// Without profiling, Placement reads the partitioner's assignment.
func TestAssignmentPlacement(t *testing.T) {
	needORT(t)
	for _, lvl := range []int{OptDisable, OptAll} {
		s := openBytes(t, newLinear(5, 3).model("", "batch", 3), Options{OptLevel: lvl})
		p, err := s.Placement()
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Nodes) == 0 || p.Providers[CPUProvider] != len(p.Nodes) || len(p.Providers) != 1 {
			t.Fatalf("level %d: placement %+v", lvl, p)
		}
		t.Logf("level %d: %v", lvl, p.Nodes)
		if _, err := s.EndProfiling(); !errors.Is(err, ErrOptions) {
			t.Fatalf("EndProfiling without profiling: %v", err)
		}
	}
}

// A profiled session that never ran has no node events; Placement falls
// back to the assignment.
func TestPlacementBeforeRun(t *testing.T) {
	needORT(t)
	s := openBytes(t, scaleModel(), Options{ProfilePrefix: filepath.Join(t.TempDir(), "p")})
	p, err := s.Placement()
	if err != nil || p.Providers[CPUProvider] != 1 {
		t.Fatalf("placement %+v, %v", p, err)
	}
}

func TestConcurrentSessions(t *testing.T) {
	needORT(t)
	l := newLinear(5, 3)
	sessions := []*Session{
		openBytes(t, l.model("", "batch", 3), Options{IntraOpThreads: 1}),
		openBytes(t, l.model("", "batch", 3), Options{IntraOpThreads: 1}),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	// Four goroutines: two per session, so one session's Runs also contend.
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			s := sessions[g%2]
			for i := 0; i < 50; i++ {
				batch := 1 + (g+i)%3
				x := input(batch, 5, float64(g*1000+i))
				res, err := s.Run(context.Background(), []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{int64(batch), 5}, F32: x}})
				if err != nil {
					errs <- err
					return
				}
				y, _ := l.reference(x, batch)
				for j, v := range res[0].F32 {
					if d := float64(v) - y[j]; d > 1e-5 || d < -1e-5 {
						errs <- fmt.Errorf("goroutine %d run %d: Y[%d] = %v, want %v", g, i, j, v, y[j])
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	needORT(t)
	const size = 384
	s := openBytes(t, chainModel(size, 60), Options{IntraOpThreads: 1})
	x := input(size, size, 0)
	in := []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{size, size}, F32: x}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, in); !errors.Is(err, context.Canceled) || fault.ClassOf(err) != fault.Interrupted {
		t.Fatalf("cancelled before: %v", err)
	}

	// The shortest of a few full runs, so warm-up does not stretch it.
	full := time.Hour
	for i := 0; i < 3; i++ {
		start := time.Now()
		if _, err := s.Run(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		full = min(full, time.Since(start))
	}

	ctx, cancel = context.WithTimeout(context.Background(), full/10)
	defer cancel()
	start := time.Now()
	_, err := s.Run(ctx, in)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled during the run (full run %v): %v", full, err)
	}
	t.Logf("full run %v, cancelled after %v", full, time.Since(start))
	// The terminate flag is cleared: the next run completes.
	if _, err := s.Run(context.Background(), in); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// Repeated runs with the same shapes allocate only their results: the
// result slice and, per output, its shape and data.
func TestRunAllocations(t *testing.T) {
	needORT(t)
	s := openBytes(t, newLinear(5, 3).model("", "batch", 3), Options{IntraOpThreads: 1})
	in := []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{2, 5}, F32: input(2, 5, 0)}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := s.Run(ctx, in); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%v allocations per Run", allocs)
	if want := 1 + 2*len(s.outputs); allocs > float64(want) {
		t.Fatalf("%v allocations per Run, want ≤ %d", allocs, want)
	}
}

// The session options our function table builds hold what was set on
// them: an entry added is seen by ONNX Runtime's own lookup.
func TestSessionOptions(t *testing.T) {
	needORT(t)
	so, err := newSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if err := so.config("quantpack.probe", "1"); err != nil {
		t.Fatal(err)
	}
	if err := so.threads(2, 2); err != nil {
		t.Fatal(err)
	}
	if err := so.optLevel(1); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"quantpack.probe": true, "quantpack.absent": false} {
		got, err := hasConfigEntry(so.h, key)
		if err != nil || got != want {
			t.Fatalf("entry %q: %v, %v; want %v", key, got, err, want)
		}
	}
}

func TestPluginLibraryMissing(t *testing.T) {
	needORT(t)
	_, err := OpenBytes(scaleModel(), Options{Device: DeviceCUDA, EPLibrary: "/nonexistent.so"})
	if !errors.Is(err, ErrUnavailable) || fault.ClassOf(err) != fault.Runtime {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
}

// Registering a library that is no execution provider fails cleanly.
func TestPluginNotAnEP(t *testing.T) {
	needORT(t)
	libc := findLibc(t)
	for i := 0; i < 2; i++ { // a failed registration leaves nothing behind
		_, err := OpenBytes(scaleModel(), Options{Device: DeviceCUDA, EPLibrary: libc})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("error %v, want ErrUnavailable", err)
		}
		t.Log(err)
	}
}

func findLibc(t *testing.T) string {
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no libc.so.6 found")
	return ""
}

// The SessionOptionsAppendExecutionProvider_V2 path, exercised with the
// OrtEpDevice ONNX Runtime lists for its own CPU provider.
func TestAppendEPDeviceV2(t *testing.T) {
	needORT(t)
	devs, err := listEPDevices()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("execution provider devices: %v", devs)
	so, err := newSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	d, err := appendEPDevice(so, func(ep string) bool { return ep == CPUProvider }, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if d.ep != CPUProvider {
		t.Fatalf("appended %v", d)
	}
	if _, err := appendEPDevice(so, func(string) bool { return true }, "npu"); err == nil {
		t.Fatal("appended an NPU device on a machine without one")
	}
	if err := so.config(keyAssignmentInfo, "1"); err != nil {
		t.Fatal(err)
	}
	h, err := createSession(so, "", scaleModel(), Options{Device: DeviceCPU}, "<bytes>")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{h: h, source: "<bytes>", opt: Options{Device: DeviceCPU}}
	defer s.Close()
	if err := s.describe(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), []verify.Tensor{{Name: "I", DType: verify.Int64, Shape: []int64{2}, I64: []int64{2, -7}}})
	if err != nil || res[0].I64[0] != 6 || res[0].I64[1] != -21 {
		t.Fatalf("run: %v, %v", res, err)
	}
	p, err := s.Placement()
	if err != nil || p.Providers[CPUProvider] != 1 {
		t.Fatalf("placement %+v, %v", p, err)
	}
}
