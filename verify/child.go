package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// The memory-child protocol. To measure a model's memory without the
// parent's own allocations, verify re-executes the program as a child
// (`quantpack verify --child-measure MODEL --child-batch N`, or
// `--child-runtime` for the runtime alone). The child loads the model,
// runs it (MeasureInChild), writes its peak RSS to the file named by
// PeakRSSFileEnv (ReportPeakRSS) and prints a ChildReport as JSON on
// stdout; the parent (ChildProbe) measures it with MeasureChild and reads
// the report for what only the child can see (its GPU memory). Both halves
// live here so they change together; the command only parses the flags.

// ErrMemoryChild is a memory child that failed.
var ErrMemoryChild = fault.New(fault.Other, "verify: memory measurement child failed")

// ChildReport is what a memory child prints on stdout. GPUBytes is null
// unless the device is cuda and NVML answered; GPUNote then says why.
type ChildReport struct {
	Model        string `json:"model,omitempty"`
	Batch        int    `json:"batch,omitempty"`
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	RSSBytes     int64  `json:"rss_bytes"`
	GPUBytes     *int64 `json:"gpu_bytes"`
	GPUDevice    string `json:"gpu_device,omitempty"`
	GPUNote      string `json:"gpu_note,omitempty"`
}

// NewChildReport is the report of a child that measured model at batch
// (model "" for the runtime alone).
func NewChildReport(model string, batch int, m ChildMeasurement) ChildReport {
	return ChildReport{Model: model, Batch: batch, PeakRSSBytes: m.RSS.Peak, RSSBytes: m.RSS.Current,
		GPUBytes: m.GPUBytes, GPUDevice: m.GPUDevice, GPUNote: m.GPUNote}
}

// Write prints r as the child's stdout: indented JSON and a newline.
func (r ChildReport) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ParseChildReport reads the ChildReport a memory child printed: the last
// JSON object that starts at the beginning of a line (Write indents its
// members), so that a line a library printed before it does no harm.
func ParseChildReport(out []byte) (ChildReport, error) {
	out = bytes.TrimSpace(out)
	start := bytes.LastIndex(out, []byte("\n{"))
	if start >= 0 {
		start++
	} else if bytes.HasPrefix(out, []byte("{")) {
		start = 0
	} else {
		return ChildReport{}, errors.New("no JSON object on stdout")
	}
	var r ChildReport
	dec := json.NewDecoder(bytes.NewReader(out[start:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return ChildReport{}, err
	}
	return r, nil
}

// ChildCommand is how to start a memory child: the program, extra
// environment, the runtime settings it must apply as the parent does, and
// how to read its exit code.
type ChildCommand struct {
	Exe       string
	Env       []string
	ORTLib    string
	Device    string
	EPLibrary string
	Threads   int
	Seed      uint64
	// ExitErr maps a child's exit code to the error class it stands for
	// (the runtime's "unavailable" code), or nil for ErrMemoryChild.
	ExitErr func(code int) error
}

// Argv is the child's command line after the program name.
func (c ChildCommand) Argv(model string, batch int) []string {
	args := []string{"verify", "--ort-lib", c.ORTLib, "--device", c.Device, "--threads", strconv.Itoa(c.Threads),
		"--seed", strconv.FormatUint(c.Seed, 10)}
	if c.EPLibrary != "" {
		args = append(args, "--ep-library", c.EPLibrary)
	}
	if model == "" {
		return append(args, "--child-runtime")
	}
	return append(args, "--child-measure", model, "--child-batch", strconv.Itoa(batch))
}

// maxChildStdout bounds what a memory child's stdout may hold: its report
// is a few hundred bytes, anything far beyond is not ours.
const maxChildStdout = 1 << 20

// Probe is the MemoryProbe that runs c as a child per measurement. With
// gpu set (device cuda) it reads the GPU figures from the child's report; a
// report that cannot be read costs the GPU figure, not the run.
func (c ChildCommand) Probe(gpu bool) MemoryProbe {
	return func(ctx context.Context, model string, batch int) (ChildMemory, error) {
		cmd := exec.CommandContext(ctx, c.Exe, c.Argv(model, batch)...)
		cmd.Env = append(cmd.Environ(), c.Env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &limitedBuffer{buf: &stdout, max: maxChildStdout}, &stderr
		m, err := MeasureChild(cmd)
		if err != nil {
			var kind error = ErrMemoryChild
			var ee *exec.ExitError
			if errors.As(err, &ee) && c.ExitErr != nil {
				if k := c.ExitErr(ee.ExitCode()); k != nil {
					kind = k
				}
			}
			return m, fmt.Errorf("%w: %v: %s", kind, err, strings.TrimSpace(stderr.String()))
		}
		if model != "" && gpu {
			if rep, perr := ParseChildReport(stdout.Bytes()); perr != nil {
				m.GPUNote = fmt.Sprintf("the memory child's report could not be read: %v", perr)
			} else {
				m.GPUBytes, m.GPUDevice, m.GPUNote = rep.GPUBytes, rep.GPUDevice, rep.GPUNote
			}
		}
		return m, nil
	}
}

// limitedBuffer keeps the first max bytes written to it and drops the rest
// (without failing the writer, so the child never blocks on its stdout).
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
