//go:build cgo

package ort

/*
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/quantpack/quantpack/verify"
)

// ONNX tensor element types (ONNXTensorElementDataType, onnx.proto DataType).
const (
	elemFloat   = 1
	elemFloat16 = 10
	elemInt64   = 7
)

var elemNames = map[uint]string{1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
	7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
	14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
	19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"}

func elemName(e uint) string {
	if n, ok := elemNames[e]; ok {
		return n
	}
	return fmt.Sprintf("element type %d", e)
}

func dtypeOf(e uint) (verify.DType, bool) {
	switch e {
	case elemFloat:
		return verify.Float32, true
	case elemFloat16:
		return verify.Float16, true
	case elemInt64:
		return verify.Int64, true
	}
	return "", false
}

func elemOf(d verify.DType) C.uint {
	switch d {
	case verify.Float16:
		return elemFloat16
	case verify.Int64:
		return elemInt64
	}
	return elemFloat
}

// maxRank bounds the rank taken from a model, so a hostile model cannot make
// describe allocate at will; real vision models stay under 8.
const maxRank = 64

// describe reads the model's inputs and outputs from the session.
func (s *Session) describe() error {
	for _, output := range []bool{false, true} {
		kind := "input"
		if output {
			kind = "output"
		}
		var n C.size_t
		if st := takeStatus(C.qp_io_count(s.h, cbool(output), &n)); st != nil {
			return errorf(ErrRun, "open", s.source, "", "%s count: %v", kind, st)
		}
		for i := C.size_t(0); i < n; i++ {
			var cname *C.char
			var onnxType, elem C.uint
			var rank C.size_t
			st := takeStatus(C.qp_io_info(s.h, cbool(output), i, &cname, &onnxType, &elem, &rank))
			name := takeString(cname)
			if st != nil {
				return errorf(ErrRun, "open", s.source, name, "%s %d: %v", kind, i, st)
			}
			if onnxType != 1 {
				return errorf(ErrUnsupported, "open", s.source, name, "%s is not a tensor (ONNXType %d)", kind, onnxType)
			}
			dt, ok := dtypeOf(uint(elem))
			if !ok {
				return errorf(ErrUnsupported, "open", s.source, name, "%s has type %s; verify/ort passes float32, float16 and int64", kind, elemName(uint(elem)))
			}
			if rank > maxRank {
				return errorf(ErrUnsupported, "open", s.source, name, "%s has rank %d (limit %d)", kind, rank, maxRank)
			}
			dims := make([]int64, rank)
			var sym *C.char
			var symLen C.size_t
			st = takeStatus(C.qp_io_dims(s.h, cbool(output), i, int64Ptr(dims), rank, &sym, &symLen))
			syms := takeStrings(sym, symLen)
			if st != nil {
				return errorf(ErrRun, "open", s.source, name, "%s shape: %v", kind, st)
			}
			for len(syms) < len(dims) {
				syms = append(syms, "")
			}
			info := verify.IOInfo{Name: name, DType: dt, Shape: dims}
			if output {
				s.outputs = append(s.outputs, info)
				s.outSym = append(s.outSym, syms[:len(dims)])
				s.outNames = append(s.outNames, C.CString(name))
			} else {
				s.inputs = append(s.inputs, info)
				s.inSym = append(s.inSym, syms[:len(dims)])
				s.inNames = append(s.inNames, C.CString(name))
			}
		}
	}
	s.order = make([]int, len(s.inputs))
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func int64Ptr(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}

// numel is the element count of shape, false on a non-positive dimension or
// overflow.
func numel(shape []int64) (int, bool) {
	n := int64(1)
	for _, d := range shape {
		if d <= 0 || n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return int(n), true
}

// buffer is a Go-owned, pinned tensor that ONNX Runtime reads or writes in
// place through an OrtValue.
type buffer struct {
	dtype verify.DType
	shape []int64
	f32   []float32
	u16   []uint16
	i64   []int64
	val   *C.OrtValue
}

// newBuffer allocates n elements of d and wraps them in an OrtValue. The
// memory is pinned, as cgo requires of Go memory that C keeps using.
func newBuffer(pin *runtime.Pinner, d verify.DType, shape []int64, n int) (*buffer, error) {
	b := &buffer{dtype: d, shape: shape}
	var p unsafe.Pointer
	var size int
	switch d {
	case verify.Float32:
		b.f32 = make([]float32, n)
		p, size = unsafe.Pointer(&b.f32[0]), 4*n
	case verify.Float16:
		b.u16 = make([]uint16, n)
		p, size = unsafe.Pointer(&b.u16[0]), 2*n
	case verify.Int64:
		b.i64 = make([]int64, n)
		p, size = unsafe.Pointer(&b.i64[0]), 8*n
	}
	pin.Pin(p)
	if st := takeStatus(C.qp_tensor(p, C.size_t(size), int64Ptr(shape), C.size_t(len(shape)), elemOf(d), &b.val)); st != nil {
		return nil, st
	}
	return b, nil
}

// fill copies t's data into b.
func (b *buffer) fill(t *verify.Tensor) {
	switch b.dtype {
	case verify.Float32:
		copy(b.f32, t.F32)
	case verify.Float16:
		copy(b.u16, t.U16)
	case verify.Int64:
		copy(b.i64, t.I64)
	}
}

// tensor returns a copy of b that the caller owns.
func (b *buffer) tensor(name string) verify.Tensor {
	t := verify.Tensor{Name: name, DType: b.dtype, Shape: append([]int64(nil), b.shape...)}
	switch b.dtype {
	case verify.Float32:
		t.F32 = append([]float32(nil), b.f32...)
	case verify.Float16:
		t.U16 = append([]uint16(nil), b.u16...)
	case verify.Int64:
		t.I64 = append([]int64(nil), b.i64...)
	}
	return t
}

// takeValue copies an output ONNX Runtime allocated into Go memory and
// releases it. The byte count comes from the element type: onnxruntime_go's
// own copy of such outputs counts elements as bytes for float16 and comes
// out short, which is why verify/ort does not use it.
func takeValue(v *C.OrtValue, name string) (verify.Tensor, error) {
	defer C.qp_value_release(v)
	var elem C.uint
	var rank C.size_t
	var data unsafe.Pointer
	if st := takeStatus(C.qp_value_info(v, &elem, &rank, &data)); st != nil {
		return verify.Tensor{}, st
	}
	if rank > maxRank {
		return verify.Tensor{}, fmt.Errorf("output rank %d over %d", rank, maxRank)
	}
	dims := make([]int64, rank)
	if st := takeStatus(C.qp_value_dims(v, int64Ptr(dims), rank)); st != nil {
		return verify.Tensor{}, st
	}
	t := verify.Tensor{Name: name, Shape: dims}
	n := 0
	if zero := hasZero(dims); !zero {
		var ok bool
		if n, ok = numel(dims); !ok {
			return verify.Tensor{}, fmt.Errorf("output shape %v overflows", dims)
		}
	}
	dt, ok := dtypeOf(uint(elem))
	if !ok {
		return verify.Tensor{}, fmt.Errorf("output type %s", elemName(uint(elem)))
	}
	t.DType = dt
	switch dt {
	case verify.Float32:
		t.F32 = make([]float32, n)
		if n > 0 {
			copy(t.F32, unsafe.Slice((*float32)(data), n))
		}
	case verify.Float16:
		t.U16 = make([]uint16, n)
		if n > 0 {
			copy(t.U16, unsafe.Slice((*uint16)(data), n))
		}
	case verify.Int64:
		t.I64 = make([]int64, n)
		if n > 0 {
			copy(t.I64, unsafe.Slice((*int64)(data), n))
		}
	}
	return t, nil
}

func hasZero(dims []int64) bool {
	for _, d := range dims {
		if d == 0 {
			return true
		}
	}
	return false
}
