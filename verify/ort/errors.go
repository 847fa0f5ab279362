package ort

import (
	"fmt"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// fixHint says how to make ONNX Runtime available; every ErrUnavailable
// message ends with it.
const fixHint = "run `make ort` or pass --ort-lib / set ONNXRUNTIME_SHARED_LIBRARY_PATH"

// Sentinels. Compare with errors.Is; fault.ClassOf gives the exit code.
var (
	// ErrUnavailable means ONNX Runtime cannot be used: the shared library is
	// missing or cannot be loaded, the binary was built without cgo, or an
	// execution provider library cannot be registered.
	ErrUnavailable = fault.New(fault.Runtime, "ort: ONNX Runtime unavailable")
	// ErrCUDAUnavailable means CUDA was asked for and this ONNX Runtime
	// build or machine cannot provide it.
	ErrCUDAUnavailable = fault.New(fault.Runtime, "ort: CUDA not available in this build")
	// ErrModel means ONNX Runtime rejected the model: missing or corrupt
	// file, invalid graph, missing external data.
	ErrModel = fault.New(fault.Invalid, "ort: model rejected by ONNX Runtime")
	// ErrUnsupported means the model is valid but cannot be run: an operator
	// without a kernel, or an input/output type this package does not pass.
	ErrUnsupported = fault.New(fault.Unsupported, "ort: unsupported model")
	// ErrInput means the tensors given to Run do not match the model's
	// inputs (name, type, shape or data length).
	ErrInput = fault.New(fault.Invalid, "ort: inputs do not match the model")
	// ErrOptions means an Options field has an invalid value.
	ErrOptions = fault.New(fault.Usage, "ort: invalid options")
	// ErrRun means ONNX Runtime failed while running or creating a session
	// for a reason that is not the model's or the caller's.
	ErrRun = fault.New(fault.Other, "ort: ONNX Runtime failed")
	// ErrClosed means the session was already closed.
	ErrClosed = fault.New(fault.Other, "ort: session closed")
	// ErrProfile means a profile file is malformed or not ONNX Runtime's.
	ErrProfile = fault.New(fault.Invalid, "ort: malformed profile")
	// ErrNVMLUnavailable means GPU memory cannot be read through NVML:
	// libnvidia-ml.so.1 is missing or does not initialise (no NVIDIA
	// driver), the binary was built without cgo, NVML failed on a device,
	// or the driver does not report per-process memory.
	ErrNVMLUnavailable = fault.New(fault.Runtime, "ort: NVML unavailable")
	// ErrNoGPUProcess means NVML works but lists no GPU memory for the
	// process: it holds no CUDA context (nothing ran on a GPU), or it runs
	// in a PID namespace (a container) whose process ids are not the ones
	// NVML reports.
	ErrNoGPUProcess = fault.New(fault.Runtime, "ort: NVML lists no GPU memory for the process")
)

// Error is an ONNX Runtime failure with its place: the operation, the file
// (library, model or profile) and the tensor or node where known. It wraps
// one of the sentinels above.
type Error struct {
	Op     string // "load", "open", "run", "register-ep", "profile", ...
	Path   string // file involved, if any
	Name   string // input, output or node name, if any
	Detail string // what went wrong, often ONNX Runtime's own message
	Kind   error  // the sentinel
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, " %s", e.Path)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, ": %q", e.Name)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel, so errors.Is and fault.ClassOf see it.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, op, path, name, format string, args ...any) *Error {
	return &Error{Op: op, Path: path, Name: name, Detail: fmt.Sprintf(format, args...), Kind: kind}
}
