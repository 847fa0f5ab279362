//go:build cgo

package ort

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/quantpack/quantpack/internal/fault"
)

// TestGPUMemoryOfProcessHere queries the real NVML for this test process.
// It holds no CUDA context unless another test of this binary opened a
// CUDA session, so without a driver the answer is ErrNVMLUnavailable and
// with one ErrNoGPUProcess; either way no panic, and an exit-6 class.
func TestGPUMemoryOfProcessHere(t *testing.T) {
	used, dev, err := GPUMemoryOfProcess(os.Getpid())
	if err == nil {
		if used == 0 || dev == "" {
			t.Fatalf("no error but %d bytes on %q", used, dev)
		}
		t.Logf("this process holds %d bytes on %s", used, dev)
		return
	}
	if !errors.Is(err, ErrNVMLUnavailable) && !errors.Is(err, ErrNoGPUProcess) {
		t.Fatalf("err %v, want ErrNVMLUnavailable or ErrNoGPUProcess", err)
	}
	if fault.ClassOf(err) != fault.Runtime {
		t.Fatalf("class %v of %v", fault.ClassOf(err), err)
	}
	// The outcome is remembered: a second call gives the same answer
	// without loading the library again.
	if _, _, err2 := GPUMemoryOfProcess(os.Getpid()); errors.Is(err, ErrNVMLUnavailable) != errors.Is(err2, ErrNVMLUnavailable) {
		t.Fatalf("second call: %v after %v", err2, err)
	}
	t.Logf("as expected on this machine: %v", err)
}

// TestNVMLMissingLibrary points go-nvml at a library that does not exist:
// the same path as a machine without the NVIDIA driver, on any machine.
func TestNVMLMissingLibrary(t *testing.T) {
	path := filepath.Join(t.TempDir(), nvmlLibraryName)
	err := initNVML(nvml.New(nvml.WithLibraryPath(path)), path)
	var e *Error
	if !errors.Is(err, ErrNVMLUnavailable) || !errors.As(err, &e) || e.Path != path {
		t.Fatalf("err %v, want ErrNVMLUnavailable naming %s", err, path)
	}
}

// fakeDevice is a mocked GPU with the given process lists; a nil list
// stands for ERROR_NOT_SUPPORTED.
func fakeDevice(name string, compute, graphics, mps []nvml.ProcessInfo) *mock.Device {
	get := func(l []nvml.ProcessInfo) func() ([]nvml.ProcessInfo, nvml.Return) {
		return func() ([]nvml.ProcessInfo, nvml.Return) {
			if l == nil {
				return nil, nvml.ERROR_NOT_SUPPORTED
			}
			return l, nvml.SUCCESS
		}
	}
	return &mock.Device{
		GetNameFunc:                       func() (string, nvml.Return) { return name, nvml.SUCCESS },
		GetComputeRunningProcessesFunc:    get(compute),
		GetGraphicsRunningProcessesFunc:   get(graphics),
		GetMPSComputeRunningProcessesFunc: get(mps),
	}
}

// fakeNVML is a mocked, initialised NVML with devs; a nil device cannot be
// opened (ERROR_NO_PERMISSION).
func fakeNVML(devs ...*mock.Device) *mock.Interface {
	return &mock.Interface{
		DeviceGetCountFunc: func() (int, nvml.Return) { return len(devs), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if devs[i] == nil {
				return nil, nvml.ERROR_NO_PERMISSION
			}
			return devs[i], nvml.SUCCESS
		},
	}
}

func TestProcessGPUMemory(t *testing.T) {
	const me = 4242
	p := func(pid uint32, used uint64) nvml.ProcessInfo { return nvml.ProcessInfo{Pid: pid, UsedGpuMemory: used} }
	none := []nvml.ProcessInfo{}

	// GPU 0: the process in the compute and graphics lists (counted once),
	// GPU 1 cannot be opened, GPU 2: compute only, no graphics or MPS
	// lists; another process everywhere.
	lib := fakeNVML(
		fakeDevice("A", []nvml.ProcessInfo{p(1, 999), p(me, 600<<20)}, []nvml.ProcessInfo{p(me, 600<<20)}, none),
		nil,
		fakeDevice("B", []nvml.ProcessInfo{p(me, 100<<20), p(2, 5)}, nil, nil),
	)
	used, dev, err := processGPUMemory(lib, me)
	if err != nil || used != 700<<20 || dev != "0: A, 2: B" {
		t.Fatalf("got %d on %q, %v; want %d on \"0: A, 2: B\"", used, dev, err, 700<<20)
	}

	errCases := []struct {
		name string
		lib  nvml.Interface
		pid  int
		want error
	}{
		{"not listed", fakeNVML(fakeDevice("A", []nvml.ProcessInfo{p(1, 5)}, none, none), nil), me, ErrNoGPUProcess},
		{"no figure", fakeNVML(fakeDevice("A", []nvml.ProcessInfo{p(me, nvmlValueNotAvailable)}, none, none)), me, ErrNVMLUnavailable},
		{"figure on one GPU only", fakeNVML(fakeDevice("A", []nvml.ProcessInfo{p(me, 5)}, none, none),
			fakeDevice("B", []nvml.ProcessInfo{p(me, nvmlValueNotAvailable)}, none, none)), me, ErrNVMLUnavailable},
		{"no GPU", fakeNVML(), me, ErrNVMLUnavailable},
		{"no GPU opens", fakeNVML(nil, nil), me, ErrNVMLUnavailable},
		{"bad pid", fakeNVML(fakeDevice("A", none, none, none)), -1, ErrOptions},
		{"count fails", &mock.Interface{DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.ERROR_UNINITIALIZED }}, me, ErrNVMLUnavailable},
		{"list fails", fakeNVML(&mock.Device{
			GetComputeRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_GPU_IS_LOST },
		}), me, ErrNVMLUnavailable},
	}
	for _, c := range errCases {
		if used, _, err := processGPUMemory(c.lib, c.pid); !errors.Is(err, c.want) || used != 0 {
			t.Errorf("%s: %d bytes, err %v; want %v", c.name, used, err, c.want)
		}
	}
}
