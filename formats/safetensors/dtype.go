package safetensors

// DType is a safetensors element type, spelled as in the header JSON.
type DType string

// The dtypes of the safetensors format that this package reads and writes.
const (
	Bool   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	U16    DType = "U16"
	I16    DType = "I16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	U32    DType = "U32"
	I32    DType = "I32"
	F32    DType = "F32"
	F64    DType = "F64"
	U64    DType = "U64"
	I64    DType = "I64"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

// Size returns the number of bytes per element, or 0 for a dtype this
// package does not know.
func (d DType) Size() int {
	switch d {
	case Bool, U8, I8, F8E4M3, F8E5M2:
		return 1
	case U16, I16, F16, BF16:
		return 2
	case U32, I32, F32:
		return 4
	case U64, I64, F64:
		return 8
	}
	return 0
}

// Valid reports whether d is one of the dtypes above.
func (d DType) Valid() bool { return d.Size() != 0 }

// String returns the header spelling.
func (d DType) String() string { return string(d) }

// upstreamOnly lists dtypes that the reference implementation defines but
// this package does not handle: the sub-byte and micro-scaling float formats
// (F4, F6_*, F8_E8M0; a byte length that is not elements×size), the AMD
// "fnuz" FP8 variants and complex64. A file using one of them is valid but
// unsupported (exit 4), unlike a dtype nobody defines, which is corrupt
// (exit 3). The list has grown over the years (F8 in 2023, these in 2025),
// so new names will keep arriving from newer writers.
var upstreamOnly = map[string]bool{
	"F4": true, "F6_E2M3": true, "F6_E3M2": true, "F8_E8M0": true,
	"F8_E4M3FNUZ": true, "F8_E5M2FNUZ": true, "C64": true,
}
