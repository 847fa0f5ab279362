package ort

// This file holds the part of the NVML query that needs no cgo, so that
// it is tested in every build; nvml_cgo.go walks the devices.

// nvmlValueNotAvailable is NVML_VALUE_NOT_AVAILABLE, ((unsigned long
// long)-1) in nvml.h: the usedGpuMemory of a process when the driver does
// not know it (Windows WDDM, or no permission to see it).
const nvmlValueNotAvailable = ^uint64(0)

// gpuProcess is one entry of an NVML running-process list.
type gpuProcess struct {
	pid  uint32
	used uint64 // usedGpuMemory, bytes
}

// deviceUsage returns the GPU memory pid holds on one device, given the
// device's running-process lists (compute, graphics, MPS compute).
//
// Within one list, the entries of pid are summed: with MIG the process
// appears once per GPU instance it uses. Across lists the largest sum is
// taken, not the total: a process with both a compute and a graphics
// context appears in both lists with the same memory, and adding them would
// count it twice. listed says whether pid appears at all; known is false
// when an entry of pid carries NVML_VALUE_NOT_AVAILABLE instead of bytes.
func deviceUsage(pid uint32, lists [][]gpuProcess) (used uint64, listed, known bool) {
	known = true
	for _, l := range lists {
		var sum uint64
		for _, p := range l {
			if p.pid != pid {
				continue
			}
			listed = true
			if p.used == nvmlValueNotAvailable {
				known = false
				continue
			}
			sum += p.used
		}
		used = max(used, sum)
	}
	if !listed {
		known = false
	}
	return used, listed, known
}
