package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// littleEndian is true on every platform we ship (amd64, arm64); the slow
// paths keep big-endian hosts correct.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// decodeFloat32 converts a float tensor's little-endian bytes to float32.
func decodeFloat32(dst []float32, src []byte, dt safetensors.DType) error {
	n := len(dst)
	switch dt {
	case safetensors.F32:
		if len(src) != 4*n {
			return errLen(dt, len(src), n)
		}
		if littleEndian {
			copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(src))), n))
			return nil
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case safetensors.F16, safetensors.BF16:
		if len(src) != 2*n {
			return errLen(dt, len(src), n)
		}
		h := u16view(src)
		if dt == safetensors.F16 {
			quant.F16ToF32(dst, h)
		} else {
			quant.BF16ToF32(dst, h)
		}
	case safetensors.F64:
		if len(src) != 8*n {
			return errLen(dt, len(src), n)
		}
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		return fmt.Errorf("%w: %s", ErrTensorDType, dt)
	}
	return nil
}

func errLen(dt safetensors.DType, got, n int) error {
	return fmt.Errorf("convert: %s tensor of %d elements has %d bytes", dt, n, got)
}

// u16view reinterprets little-endian bytes as uint16 values, copying only on
// big-endian hosts or when src is misaligned (2022 safetensors headers are not
// 8-byte aligned, so mmapped data may start at an odd address).
func u16view(src []byte) []uint16 {
	n := len(src) / 2
	if littleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(src)))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(src))), n)
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(src[2*i:])
	}
	return out
}

// bytesOf returns the little-endian bytes of a numeric slice. On
// little-endian hosts it is a view; otherwise a converted copy.
func bytesOfF32(v []float32) []byte {
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesOfU16(v []uint16) []byte {
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 2*len(v))
	}
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func bytesOfI8(v []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}
