//go:build !cgo

package ort

import (
	"context"

	"github.com/quantpack/quantpack/verify"
)

// This file keeps the package's API when cgo is off (CGO_ENABLED=0): the
// build works, and everything that needs ONNX Runtime fails with
// ErrUnavailable.

func noCgo(op string) error {
	return errorf(ErrUnavailable, op, "", "", "quantpack was built without cgo; rebuild with CGO_ENABLED=1 and %s", fixHint)
}

// Init always fails: ONNX Runtime needs cgo.
func Init(libPath string) error { return noCgo("load") }

// Version returns "": no library can be loaded without cgo.
func Version() string { return "" }

// Session is a loaded model; without cgo none can be opened.
type Session struct{}

// Open always fails: ONNX Runtime needs cgo.
func Open(modelPath string, opt Options) (*Session, error) { return nil, noCgo("open") }

// OpenBytes always fails: ONNX Runtime needs cgo.
func OpenBytes(model []byte, opt Options) (*Session, error) { return nil, noCgo("open") }

// Options returns the zero Options.
func (s *Session) Options() Options { return Options{} }

// Inputs returns nil.
func (s *Session) Inputs() []verify.IOInfo { return nil }

// Outputs returns nil.
func (s *Session) Outputs() []verify.IOInfo { return nil }

// Run always fails: ONNX Runtime needs cgo.
func (s *Session) Run(ctx context.Context, in []verify.Tensor) ([]verify.Tensor, error) {
	return nil, noCgo("run")
}

// Placement always fails: ONNX Runtime needs cgo.
func (s *Session) Placement() (verify.Placement, error) {
	return verify.Placement{}, noCgo("placement")
}

// EndProfiling always fails: ONNX Runtime needs cgo.
func (s *Session) EndProfiling() (string, error) { return "", noCgo("profile") }

// ProfileFile returns "".
func (s *Session) ProfileFile() string { return "" }

// Close does nothing.
func (s *Session) Close() error { return nil }

var _ verify.Runner = (*Session)(nil)
