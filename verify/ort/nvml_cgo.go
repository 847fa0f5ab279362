//go:build cgo

package ort

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlLibraryName is the library go-nvml opens with dlopen; the dynamic
// loader finds it (it ships with the NVIDIA driver, not with CUDA).
const nvmlLibraryName = "libnvidia-ml.so.1"

// nvmlState is NVML, initialised on the first GPUMemoryOfProcess. It is
// never shut down: the processes that query it (verify's memory children)
// exit right after, and a failed initialisation is not retried.
var nvmlState struct {
	once sync.Once
	lib  nvml.Interface
	err  error
}

// GPUMemoryOfProcess returns the GPU memory that process pid holds now, in
// bytes, summed over the GPUs NVML sees, and the devices it holds memory on
// ("0: NVIDIA H100 80GB HBM3"). The figure is NVML's usedGpuMemory of the
// process: current usage, not a peak, and it includes the CUDA context.
//
// It loads libnvidia-ml.so.1 on first use. When NVML cannot be loaded or
// initialised (no NVIDIA driver), fails on a device, or does not report
// per-process memory, the error wraps ErrNVMLUnavailable; when NVML lists
// no memory for pid, it wraps ErrNoGPUProcess. Both are fault.Runtime.
func GPUMemoryOfProcess(pid int) (uint64, string, error) {
	nvmlState.once.Do(func() {
		lib := nvml.New()
		if nvmlState.err = initNVML(lib, nvmlLibraryName); nvmlState.err == nil {
			nvmlState.lib = lib
		}
	})
	if nvmlState.err != nil {
		return 0, "", nvmlState.err
	}
	return processGPUMemory(nvmlState.lib, pid)
}

// initNVML loads and initialises lib; name is the library it opens, for
// the error.
func initNVML(lib nvml.Interface, name string) error {
	// go-nvml's Init dlopens the library and returns
	// ERROR_LIBRARY_NOT_FOUND when that fails; nvmlInit itself returns
	// ERROR_DRIVER_NOT_LOADED without a running driver.
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return errorf(ErrNVMLUnavailable, "nvml init", name, "", "%v (is an NVIDIA driver installed and loaded?)", ret)
	}
	return nil
}

// processGPUMemory walks the devices of an initialised lib and adds up
// what pid holds on each (deviceUsage). A device whose handle cannot be
// taken (ERROR_NO_PERMISSION: outside this container's devices) is
// skipped; a process list the device or driver lacks (ERROR_NOT_SUPPORTED,
// ERROR_FUNCTION_NOT_FOUND) is left out; any other failure is an error, as
// the device it happened on could hold part of the memory.
func processGPUMemory(lib nvml.Interface, pid int) (uint64, string, error) {
	if pid <= 0 || pid > math.MaxUint32 {
		return 0, "", errorf(ErrOptions, "nvml", "", "", "process id %d", pid)
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return 0, "", errorf(ErrNVMLUnavailable, "nvml device count", "", "", "%v", ret)
	}
	if n == 0 {
		return 0, "", errorf(ErrNVMLUnavailable, "nvml", "", "", "NVML sees no GPU")
	}
	var (
		total    uint64
		devices  []string
		seen     int  // devices whose lists were read
		unknown  bool // pid listed without a byte count
		skipped  []string
		lastSkip nvml.Return
	)
	for i := range n {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			skipped, lastSkip = append(skipped, fmt.Sprint(i)), ret
			continue
		}
		lists, err := processLists(dev, i)
		if err != nil {
			return 0, "", err
		}
		seen++
		used, listed, known := deviceUsage(uint32(pid), lists)
		switch {
		case !listed:
			continue
		case !known:
			unknown = true
			continue
		}
		total += used
		name, ret := dev.GetName()
		if ret != nvml.SUCCESS {
			name = "GPU"
		}
		devices = append(devices, fmt.Sprintf("%d: %s", i, name))
	}
	switch {
	case len(devices) > 0 && unknown:
		// Part of the memory is not reported: the sum would understate it.
		return 0, "", errorf(ErrNVMLUnavailable, "nvml", "", "", "process %d: the driver reports no memory figure on some of its GPUs", pid)
	case len(devices) > 0:
		return total, strings.Join(devices, ", "), nil
	case unknown:
		return 0, "", errorf(ErrNVMLUnavailable, "nvml", "", "", "process %d: the driver does not report per-process GPU memory here", pid)
	case seen == 0:
		return 0, "", errorf(ErrNVMLUnavailable, "nvml", "", "", "none of %d GPUs could be opened (%v)", n, lastSkip)
	}
	detail := fmt.Sprintf("process %d is in no running-process list of %d GPUs", pid, seen)
	if len(skipped) > 0 {
		detail += fmt.Sprintf(" (GPUs %s could not be opened: %v)", strings.Join(skipped, ", "), lastSkip)
	}
	return 0, "", errorf(ErrNoGPUProcess, "nvml", "", "", "%s; it holds no CUDA context, or NVML reports ids of another PID namespace (a container)", detail)
}

// processLists reads the compute, graphics and MPS compute process lists
// of device index i.
func processLists(dev nvml.Device, i int) ([][]gpuProcess, error) {
	var lists [][]gpuProcess
	for _, l := range []struct {
		name string
		get  func() ([]nvml.ProcessInfo, nvml.Return)
	}{
		{"compute", dev.GetComputeRunningProcesses},
		{"graphics", dev.GetGraphicsRunningProcesses},
		{"MPS compute", dev.GetMPSComputeRunningProcesses},
	} {
		ps, ret := l.get()
		switch ret {
		case nvml.SUCCESS:
		case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND:
			continue
		default:
			return nil, errorf(ErrNVMLUnavailable, "nvml", "", "", "GPU %d: %s running processes: %v", i, l.name, ret)
		}
		list := make([]gpuProcess, len(ps))
		for k, p := range ps {
			list[k] = gpuProcess{pid: p.Pid, used: p.UsedGpuMemory}
		}
		lists = append(lists, list)
	}
	return lists, nil
}
