package verify

import (
	"fmt"
	"slices"
	"strings"
)

// deviceCUDA is the device name (ort.DeviceCUDA) under which memory
// children read GPU memory.
const deviceCUDA = "cuda"

// GPUMethodNVML is MemoryReport.GPUMethod when GPU memory was read
// through NVML.
const GPUMethodNVML = "nvml-process"

// nvmlCaveat says what an NVML figure is.
const nvmlCaveat = "NVML's used GPU memory of each model's child process, read right after its runs while its " +
	"session is still open: current usage, not a peak (ONNX Runtime's CUDA arena keeps the memory it grew to, " +
	"so it is close to one), CUDA context included, summed over GPUs"

// GPUQuery returns the GPU memory the calling process holds now, in bytes,
// and the devices it is on. verify has no cgo: the command line passes one
// built on ort.GPUMemoryOfProcess (NVML).
type GPUQuery func() (bytes int64, device string, err error)

// gpuTally collects the GPU figures of the model children of a run.
type gpuTally struct {
	measured, missing int
	notes             []string
}

// add records one child's GPU memory and returns it in MiB, or nil when
// the child had none.
func (g *gpuTally) add(cm ChildMemory) *float64 {
	if cm.GPUBytes == nil {
		g.missing++
		note := cm.GPUNote
		if note == "" {
			note = "a child reported no GPU memory"
		}
		if !slices.Contains(g.notes, note) {
			g.notes = append(g.notes, note)
		}
		return nil
	}
	g.measured++
	return mb(*cm.GPUBytes)
}

// summary returns MemoryReport.GPUMethod and GPUNote for a run on device.
func (g *gpuTally) summary(device string) (method, note string) {
	switch {
	case device != deviceCUDA:
		return "", fmt.Sprintf("not measured: device %s (GPU memory is read through NVML with --device cuda)", orCPU(device))
	case g.measured == 0:
		return "", "not measured: " + strings.Join(g.notes, "; ")
	case g.missing > 0:
		return GPUMethodNVML, fmt.Sprintf("%s; %d of %d children not measured: %s",
			nvmlCaveat, g.missing, g.measured+g.missing, strings.Join(g.notes, "; "))
	}
	return GPUMethodNVML, nvmlCaveat
}

func orCPU(device string) string {
	if device == "" {
		return "cpu"
	}
	return device
}
