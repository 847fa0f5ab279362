package verify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// RSS is this process's resident memory in bytes, from /proc/self/status.
type RSS struct {
	// Current is VmRSS, the resident set now.
	Current int64 `json:"current_bytes"`
	// Peak is VmHWM, the high-water mark since the process started (since
	// exec, so it is this program's alone).
	Peak int64 `json:"peak_bytes"`
}

// ErrNoProcStatus is returned where /proc/self/status does not exist
// (not Linux).
var ErrNoProcStatus = errors.New("verify: /proc/self/status not available")

// CurrentRSS reads VmRSS and VmHWM of the calling process.
func CurrentRSS() (RSS, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return RSS{}, fmt.Errorf("%w: %w", ErrNoProcStatus, err)
	}
	return parseProcStatus(b)
}

func parseProcStatus(b []byte) (RSS, error) {
	var r RSS
	cur, ok1 := parseKBField(bytes.NewReader(b), "VmRSS:")
	peak, ok2 := parseKBField(bytes.NewReader(b), "VmHWM:")
	if !ok1 || !ok2 {
		return RSS{}, fmt.Errorf("%w: no VmRSS/VmHWM lines", ErrNoProcStatus)
	}
	r.Current, r.Peak = cur, peak
	return r, nil
}

// PeakRSS runs cmd, if it has not run yet, and returns the peak resident
// memory that the kernel reports for it in its rusage (ru_maxrss, in bytes;
// Linux counts KiB, macOS bytes). The error is cmd's own, returned with the
// figure when there is one.
//
// On Linux this is an upper bound, not the child's own peak: the kernel
// carries the old memory map's high-water mark across exec, and Go starts
// children with vfork semantics, so that old map is the parent's. A
// parent at 300 MB gets ≥ 300 MB for a child that used 20 MB. Use
// MeasureChild with a child that calls ReportPeakRSS for the child's own
// figure.
func PeakRSS(cmd *exec.Cmd) (int64, error) {
	var runErr error
	if cmd.ProcessState == nil {
		runErr = cmd.Run()
	}
	if cmd.ProcessState == nil {
		return 0, runErr
	}
	v, err := maxRSSBytes(cmd.ProcessState)
	if err != nil {
		return 0, errors.Join(runErr, err)
	}
	return v, runErr
}

// PeakRSSFileEnv names the environment variable through which MeasureChild
// asks a child to write its own peak RSS; ReportPeakRSS reads it.
const PeakRSSFileEnv = "QUANTPACK_PEAK_RSS_FILE"

// ChildMemory is a child process's peak memory.
type ChildMemory struct {
	// PeakBytes is the child's own VmHWM when it reported it
	// (SelfReported), else the rusage figure.
	PeakBytes int64 `json:"peak_rss_bytes"`
	// RusageMaxBytes is ru_maxrss, an upper bound on Linux (see PeakRSS).
	RusageMaxBytes int64 `json:"rusage_max_rss_bytes"`
	SelfReported   bool  `json:"self_reported"`
	// GPUBytes is the GPU memory the child held right after its runs
	// (MeasureInChild); nil when it did not measure it, and GPUNote then
	// says why (empty when it was not asked to, as on the CPU).
	GPUBytes  *int64 `json:"gpu_bytes"`
	GPUDevice string `json:"gpu_device,omitempty"`
	GPUNote   string `json:"gpu_note,omitempty"`
}

// MeasureChild runs cmd (not yet started) with PeakRSSFileEnv pointing at
// a temporary file, and returns the peak the child wrote there with
// ReportPeakRSS, falling back to rusage when it wrote nothing. cmd's error
// is returned beside the figures.
func MeasureChild(cmd *exec.Cmd) (ChildMemory, error) {
	if cmd.Process != nil {
		return ChildMemory{}, errors.New("verify: MeasureChild needs a command that has not started")
	}
	f, err := os.CreateTemp("", "quantpack-rss-*")
	if err != nil {
		return ChildMemory{}, err
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, PeakRSSFileEnv+"="+name)
	ru, runErr := PeakRSS(cmd)
	m := ChildMemory{PeakBytes: ru, RusageMaxBytes: ru}
	if b, err := os.ReadFile(name); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 {
			m.PeakBytes, m.SelfReported = v, true
		}
	}
	return m, runErr
}

// ReportPeakRSS is called by a child process (re-exec'd by the parent
// through MeasureChild) just before it exits: when PeakRSSFileEnv is set it
// writes the process's VmHWM in bytes there. Without the variable it does
// nothing.
func ReportPeakRSS() error {
	path := os.Getenv(PeakRSSFileEnv)
	if path == "" {
		return nil
	}
	r, err := CurrentRSS()
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.FormatInt(r.Peak, 10)+"\n"), 0o600)
}
