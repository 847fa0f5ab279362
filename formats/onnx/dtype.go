package onnx

import (
	"math"
	"strconv"
)

// DataType is TensorProto.DataType: the element type of a tensor or value.
type DataType int32

// The element types of onnx.proto (TensorProto.DataType), numbered as there.
const (
	Undefined      DataType = 0
	Float          DataType = 1
	Uint8          DataType = 2
	Int8           DataType = 3
	Uint16         DataType = 4
	Int16          DataType = 5
	Int32          DataType = 6
	Int64          DataType = 7
	String         DataType = 8
	Bool           DataType = 9
	Float16        DataType = 10
	Double         DataType = 11
	Uint32         DataType = 12
	Uint64         DataType = 13
	Complex64      DataType = 14
	Complex128     DataType = 15
	BFloat16       DataType = 16
	Float8E4M3FN   DataType = 17
	Float8E4M3FNUZ DataType = 18
	Float8E5M2     DataType = 19
	Float8E5M2FNUZ DataType = 20
	Uint4          DataType = 21
	Int4           DataType = 22
	Float4E2M1     DataType = 23
	Float8E8M0     DataType = 24
	Uint2          DataType = 25
	Int2           DataType = 26
)

var dataTypeNames = [...]string{
	"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
	"STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
	"COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
	"FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2",
}

// String returns the onnx.proto enum name, or DataType(n) for a number this
// package does not know.
func (d DataType) String() string {
	if d >= 0 && int(d) < len(dataTypeNames) {
		return dataTypeNames[d]
	}
	return "DataType(" + strconv.Itoa(int(d)) + ")"
}

// Known reports whether d is one of the types above other than Undefined.
func (d DataType) Known() bool { return d > Undefined && int(d) < len(dataTypeNames) }

// Bits returns the storage width of one element in bits (4 for INT4, UINT4
// and FLOAT4E2M1, 2 for INT2 and UINT2), or 0 for Undefined, String and
// unknown types, which have no fixed width.
func (d DataType) Bits() int {
	switch d {
	case Uint2, Int2:
		return 2
	case Uint4, Int4, Float4E2M1:
		return 4
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return 8
	case Uint16, Int16, Float16, BFloat16:
		return 16
	case Float, Int32, Uint32:
		return 32
	case Int64, Uint64, Double, Complex64:
		return 64
	case Complex128:
		return 128
	}
	return 0
}

// Size returns the bytes per element, or 0 when an element is not a whole
// number of bytes (the 4- and 2-bit types: use ByteLen) or has no fixed
// width (String, Undefined, unknown).
func (d DataType) Size() int {
	if b := d.Bits(); b >= 8 {
		return b / 8
	}
	return 0
}

// ByteLen returns the raw_data length of n elements of type d: n·size, or
// ceil(n·bits/8) for the sub-byte types, which pack the first element in the
// least significant bits (onnx.proto, raw_data). It reports false for a type
// without fixed width, a negative n, or a length past math.MaxInt64.
func (d DataType) ByteLen(n int64) (int64, bool) {
	bits := int64(d.Bits())
	if bits == 0 || n < 0 {
		return 0, false
	}
	if bits >= 8 {
		size := bits / 8
		if n > math.MaxInt64/size {
			return 0, false
		}
		return n * size, true
	}
	perByte := 8 / bits
	return n/perByte + boolInt(n%perByte != 0), true
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// FromSafetensors maps a safetensors dtype string ("F32", "BF16", "F8_E4M3",
// …) to its ONNX element type. It reports false for a name without an ONNX
// counterpart.
func FromSafetensors(dtype string) (DataType, bool) {
	switch dtype {
	case "BOOL":
		return Bool, true
	case "U8":
		return Uint8, true
	case "I8":
		return Int8, true
	case "U16":
		return Uint16, true
	case "I16":
		return Int16, true
	case "U32":
		return Uint32, true
	case "I32":
		return Int32, true
	case "U64":
		return Uint64, true
	case "I64":
		return Int64, true
	case "F16":
		return Float16, true
	case "BF16":
		return BFloat16, true
	case "F32":
		return Float, true
	case "F64":
		return Double, true
	case "C64":
		return Complex64, true
	// safetensors F8_E4M3 is torch.float8_e4m3fn (finite, NaN only), the
	// same bits as FLOAT8E4M3FN; F8_E5M2 is IEEE-like like FLOAT8E5M2.
	case "F8_E4M3":
		return Float8E4M3FN, true
	case "F8_E5M2":
		return Float8E5M2, true
	case "F8_E4M3FNUZ":
		return Float8E4M3FNUZ, true
	case "F8_E5M2FNUZ":
		return Float8E5M2FNUZ, true
	case "F8_E8M0":
		return Float8E8M0, true
	}
	return Undefined, false
}

// Safetensors returns the safetensors dtype string of d, the inverse of
// FromSafetensors. It reports false for types safetensors cannot store
// (String, the sub-byte integers, Complex128, …).
func (d DataType) Safetensors() (string, bool) {
	switch d {
	case Bool:
		return "BOOL", true
	case Uint8:
		return "U8", true
	case Int8:
		return "I8", true
	case Uint16:
		return "U16", true
	case Int16:
		return "I16", true
	case Uint32:
		return "U32", true
	case Int32:
		return "I32", true
	case Uint64:
		return "U64", true
	case Int64:
		return "I64", true
	case Float16:
		return "F16", true
	case BFloat16:
		return "BF16", true
	case Float:
		return "F32", true
	case Double:
		return "F64", true
	case Complex64:
		return "C64", true
	case Float8E4M3FN:
		return "F8_E4M3", true
	case Float8E5M2:
		return "F8_E5M2", true
	case Float8E4M3FNUZ:
		return "F8_E4M3FNUZ", true
	case Float8E5M2FNUZ:
		return "F8_E5M2FNUZ", true
	case Float8E8M0:
		return "F8_E8M0", true
	}
	return "", false
}
