//go:build !cgo

package ort

// GPUMemoryOfProcess always fails with ErrNVMLUnavailable: NVML is reached
// through cgo.
func GPUMemoryOfProcess(pid int) (uint64, string, error) {
	return 0, "", errorf(ErrNVMLUnavailable, "nvml", "", "", "quantpack was built without cgo; rebuild with CGO_ENABLED=1 to read GPU memory")
}
