package quant

import (
	"fmt"

	"github.com/quantpack/quantpack/internal/fault"
)

// Sentinels. Every error this package returns wraps exactly one of them, so
// callers test with errors.Is and map to exit codes with fault.ClassOf.
var (
	// ErrNonFinite: a NaN or ±Inf where an integer scheme needs a finite
	// value (fault.Invalid, exit 3: a checkpoint with such weights is corrupt
	// for our purposes). Returned inside a *NonFiniteError.
	ErrNonFinite = fault.New(fault.Invalid, "quant: non-finite value")
	// ErrRange: finite input whose quantization parameters do not fit the
	// scheme: an INT4 asymmetric block whose max-min overflows float32, or a
	// scale that overflows half precision (fault.Unsupported, exit 4).
	ErrRange = fault.New(fault.Unsupported, "quant: value range not representable")
	// ErrBlockSize: a block size the scheme does not define (fault.Usage,
	// exit 2: it comes from --block-size).
	ErrBlockSize = fault.New(fault.Usage, "quant: unsupported block size")
	// ErrLength: slice lengths that disagree with the shape or with each
	// other, or a negative dimension (fault.Other, exit 1: a bug in the
	// caller, not a problem with the input).
	ErrLength = fault.New(fault.Other, "quant: slice length does not match shape")
)

// NonFiniteError reports the first non-finite input element.
type NonFiniteError struct {
	// Index is the element's position in the source slice (row-major).
	Index int
	// Value is the offending value (NaN or ±Inf).
	Value float32
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("%v at element %d (%v)", ErrNonFinite, e.Index, e.Value)
}

// Unwrap returns ErrNonFinite.
func (e *NonFiniteError) Unwrap() error { return ErrNonFinite }

// lengthError builds an ErrLength error naming what disagreed.
func lengthError(what string, got, want int) error {
	return fmt.Errorf("%w: %s has %d, want %d", ErrLength, what, got, want)
}

// mulDims returns a*b, or an error when either is negative or the product
// overflows int.
func mulDims(a, b int) (int, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("%w: negative dimension %d×%d", ErrLength, a, b)
	}
	if a != 0 && b > maxInt/a {
		return 0, fmt.Errorf("%w: %d×%d overflows int", ErrLength, a, b)
	}
	return a * b, nil
}

const maxInt = int(^uint(0) >> 1)
