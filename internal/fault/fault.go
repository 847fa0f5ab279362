// Package fault classifies errors so that the command line can map them to
// exit codes in one place (see cmd/quantpack/exit.go).
//
// A package declares its sentinels with New, giving each a class:
//
//	var ErrHeaderTooLarge = fault.New(fault.Invalid, "safetensors: header too large")
//
// Typed errors that carry a location (file, tensor, byte offset) wrap such a
// sentinel with %w or implement Classer themselves; WithClass gives an error
// a class where it arises. ClassOf walks the chain.
package fault

import (
	"context"
	"errors"
)

// Class is the kind of failure, and decides the exit code.
type Class int

const (
	// Other is anything unclassified (exit 1).
	Other Class = iota
	// Usage is a wrong flag or argument (exit 2).
	Usage
	// Invalid is input that is corrupt or malformed (exit 3).
	Invalid
	// Unsupported is valid input that quantpack cannot handle: an
	// architecture, a dtype, an operator (exit 4).
	Unsupported
	// Gate is a quality gate that failed (exit 5).
	Gate
	// Runtime is a missing ONNX Runtime library or device (exit 6).
	Runtime
	// Interrupted is SIGINT/SIGTERM or a cancelled context (exit 130).
	Interrupted
)

func (c Class) String() string {
	switch c {
	case Usage:
		return "usage"
	case Invalid:
		return "invalid"
	case Unsupported:
		return "unsupported"
	case Gate:
		return "gate"
	case Runtime:
		return "runtime"
	case Interrupted:
		return "interrupted"
	}
	return "other"
}

// Classer is implemented by errors that know their class.
type Classer interface {
	FaultClass() Class
}

type sentinel struct {
	class Class
	msg   string
}

func (s *sentinel) Error() string     { return s.msg }
func (s *sentinel) FaultClass() Class { return s.class }

// New returns a sentinel error of the given class. Compare with errors.Is.
func New(c Class, msg string) error { return &sentinel{class: c, msg: msg} }

// WithClass returns err with class c: the same message, errors.Is and
// errors.As see err's chain, and ClassOf answers c. It is for errors whose
// class is decided by where they arise rather than by a sentinel (an option
// parser's error is a usage mistake, whatever produced it). nil stays nil.
func WithClass(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &classed{err: err, class: c}
}

type classed struct {
	err   error
	class Class
}

func (e *classed) Error() string     { return e.err.Error() }
func (e *classed) Unwrap() error     { return e.err }
func (e *classed) FaultClass() Class { return e.class }

// ClassOf returns the class of the first error in err's chain that has one.
// Context cancellation counts as Interrupted.
func ClassOf(err error) Class {
	if err == nil {
		return Other
	}
	var c Classer
	if errors.As(err, &c) {
		return c.FaultClass()
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	return Other
}

// Shared sentinels for classes that no single package owns.
var (
	// ErrUsage marks a command-line mistake.
	ErrUsage = New(Usage, "usage error")
	// ErrGate marks a failed quality gate.
	ErrGate = New(Gate, "gate failed")
	// ErrInterrupted marks a run stopped by a signal.
	ErrInterrupted = New(Interrupted, "interrupted")
)
