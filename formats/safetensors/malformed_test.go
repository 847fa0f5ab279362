package safetensors

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// f32x4 is the body of a well-formed [2,2] F32 tensor.
const f32x4 = `{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`

type badCase struct {
	name   string
	data   []byte
	want   error       // sentinel
	class  fault.Class // expected class
	tensor string      // tensor the error must name, if any
}

func badCases() []badCase {
	d16 := make([]byte, 16)
	tooMany := "[" + strings.Repeat("1,", MaxDims) + "1]"
	return []badCase{
		{"empty file", nil, ErrTruncated, fault.Invalid, ""},
		{"shorter than the length", []byte{1, 0, 0}, ErrTruncated, fault.Invalid, ""},
		{"header length > file", raw(1000, `{"a":`+f32x4+`}`, d16), ErrTruncated, fault.Invalid, ""},
		{"header length > 100 MB", raw(MaxHeaderSize+1, "{}", nil), ErrHeaderTooLarge, fault.Invalid, ""},
		{"header length 2^64-1", raw(math.MaxUint64, "{}", nil), ErrHeaderTooLarge, fault.Invalid, ""},
		{"header length wraps 8+N", raw(math.MaxUint64-7, "{}", nil), ErrHeaderTooLarge, fault.Invalid, ""},
		{"header length 2^63", raw(1<<63, "{}", nil), ErrHeaderTooLarge, fault.Invalid, ""},
		{"data truncated", file(`{"a":`+f32x4+`}`, d16[:15]), ErrOffsets, fault.Invalid, "a"},

		{"invalid JSON", file(`{"a":{"dtype":"F32",`, nil), ErrHeaderJSON, fault.Invalid, "a"},
		{"empty header", file(``, nil), ErrHeaderJSON, fault.Invalid, ""},
		{"header is an array", file(`[]`, nil), ErrHeaderJSON, fault.Invalid, ""},
		{"header is a string", file(`"x"`, nil), ErrHeaderJSON, fault.Invalid, ""},
		{"trailing garbage", file(`{"a":`+f32x4+`} x`, d16), ErrHeaderJSON, fault.Invalid, ""},
		{"second object", file(`{"a":`+f32x4+`}{}`, d16), ErrHeaderJSON, fault.Invalid, ""},
		{"NUL padding", file(`{"a":`+f32x4+"}\x00\x00", d16), ErrHeaderJSON, fault.Invalid, ""},
		{"invalid UTF-8", file("{\"a\xff\":"+f32x4+`}`, d16), ErrHeaderJSON, fault.Invalid, ""},
		{"missing comma", file(`{"a":{"dtype":"F32" "shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"tensor not an object", file(`{"a":[1]}`, nil), ErrHeaderJSON, fault.Invalid, "a"},
		{"metadata value not a string", file(`{"__metadata__":{"k":1}}`, nil), ErrHeaderJSON, fault.Invalid, ""},
		{"metadata value an object", file(`{"__metadata__":{"k":{}}}`, nil), ErrHeaderJSON, fault.Invalid, ""},
		{"metadata not an object", file(`{"__metadata__":"x"}`, nil), ErrHeaderJSON, fault.Invalid, ""},
		{"missing dtype", file(`{"a":{"shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"missing shape", file(`{"a":{"dtype":"F32","data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"missing data_offsets", file(`{"a":{"dtype":"F32","shape":[2,2]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"dtype not a string", file(`{"a":{"dtype":4,"shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"fractional dim", file(`{"a":{"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"exponent dim", file(`{"a":{"dtype":"F32","shape":[2e0,2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"string dim", file(`{"a":{"dtype":"F32","shape":["2",2],"data_offsets":[0,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"one offset", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16,16]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},
		{"negative offset", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[-16,0]}}`, d16), ErrHeaderJSON, fault.Invalid, "a"},

		{"duplicate names", file(`{"a":`+f32x4+`,"a":`+f32x4+`}`, d16), ErrDuplicate, fault.Invalid, "a"},
		{"duplicate metadata", file(`{"__metadata__":{},"__metadata__":{}}`, nil), ErrDuplicate, fault.Invalid, "__metadata__"},
		{"duplicate metadata key", file(`{"__metadata__":{"k":"1","k":"2"}}`, nil), ErrDuplicate, fault.Invalid, ""},
		{"duplicate field", file(`{"a":{"dtype":"F32","dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrDuplicate, fault.Invalid, "a"},

		{"offsets past the end", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}}`, d16), ErrOffsets, fault.Invalid, "a"},
		{"offset beyond int64", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,18446744073709551615]}}`, d16), ErrOffsets, fault.Invalid, "a"},
		{"offsets near int64 max", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[9223372036854775800,9223372036854775807]}}`, d16), ErrOffsets, fault.Invalid, "a"},
		{"reversed offsets", file(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}}`, d16), ErrOffsets, fault.Invalid, "a"},
		{"overlap", file(`{"a":`+f32x4+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, d16[:16]), ErrOffsets, fault.Invalid, "b"},
		{"overlap, zero-size inside", file(`{"a":`+f32x4+`,"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}`, d16), ErrOffsets, fault.Invalid, "z"},
		{"same range twice", file(`{"a":`+f32x4+`,"b":`+f32x4+`}`, d16), ErrOffsets, fault.Invalid, "b"},
		{"gap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`, d16), ErrOffsets, fault.Invalid, "b"},
		{"gap before the first", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, d16), ErrOffsets, fault.Invalid, "a"},
		{"bytes after the last", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, d16), ErrOffsets, fault.Invalid, ""},
		{"data but no tensors", file(`{}`, d16), ErrOffsets, fault.Invalid, ""},

		{"shape x dtype != bytes", file(`{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}`, d16), ErrShapeSize, fault.Invalid, "a"},
		{"dtype size mismatch", file(`{"a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrShapeSize, fault.Invalid, "a"},
		{"scalar with 2 elements", file(`{"a":{"dtype":"F64","shape":[],"data_offsets":[0,16]}}`, d16), ErrShapeSize, fault.Invalid, "a"},
		{"shape product overflow", file(`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, d16), ErrShapeOverflow, fault.Invalid, "a"},
		{"overflow before a zero dim", file(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil), ErrShapeOverflow, fault.Invalid, "a"},
		{"bytes overflow", file(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}}`, d16), ErrShapeOverflow, fault.Invalid, "a"},
		{"dim beyond int64", file(`{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,16]}}`, d16), ErrShapeOverflow, fault.Invalid, "a"},
		{"too many dims", file(`{"a":{"dtype":"U8","shape":`+tooMany+`,"data_offsets":[0,1]}}`, d16[:1]), ErrTooManyDims, fault.Unsupported, "a"},

		{"unknown dtype", file(`{"a":{"dtype":"F17","shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrUnknownDType, fault.Invalid, "a"},
		{"lower-case dtype", file(`{"a":{"dtype":"f32","shape":[2,2],"data_offsets":[0,16]}}`, d16), ErrUnknownDType, fault.Invalid, "a"},
		{"newer dtype F4", file(`{"a":{"dtype":"F4","shape":[2,2],"data_offsets":[0,2]}}`, d16[:2]), ErrUnsupportedDType, fault.Unsupported, "a"},
		{"newer dtype F8_E8M0", file(`{"a":{"dtype":"F8_E8M0","shape":[4],"data_offsets":[0,4]}}`, d16[:4]), ErrUnsupportedDType, fault.Unsupported, "a"},
	}
}

// TestMalformed feeds every malformed file through the ReaderAt path and the
// mmap path: the error must wrap the expected sentinel, have the expected
// fault class, and be a *FormatError naming the file and the tensor.
func TestMalformed(t *testing.T) {
	dir := t.TempDir()
	for i, c := range badCases() {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("case%02d.safetensors", i))
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, errR := NewFile(bytes.NewReader(c.data), int64(len(c.data)), path)
			_, errM := Open(path)
			for _, err := range []error{errR, errM} {
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				if got := fault.ClassOf(err); got != c.class {
					t.Fatalf("class %v, want %v (%v)", got, c.class, err)
				}
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *FormatError", err)
				}
				if fe.File != path || fe.Tensor != c.tensor {
					t.Fatalf("error names file %q tensor %q, want %q %q: %v", fe.File, fe.Tensor, path, c.tensor, err)
				}
				if fe.Offset < 0 {
					t.Fatalf("error has no byte offset: %v", err)
				}
				if !strings.HasPrefix(err.Error(), "safetensors: "+path+": ") {
					t.Fatalf("message %q does not start with the package and file", err)
				}
			}
		})
	}
}

// TestValidEdgeCases covers what the format allows and a strict reader could
// wrongly refuse.
func TestValidEdgeCases(t *testing.T) {
	d16 := make([]byte, 16)
	for i := range d16 {
		d16[i] = byte(i)
	}
	cases := []struct {
		name    string
		data    []byte
		tensors int
		meta    int
	}{
		{"no tensors", file(`{}`, nil), 0, 0},
		{"only metadata", file(`{"__metadata__":{"format":"pt"}}`, nil), 0, 1},
		{"empty metadata", file(`{"__metadata__":{}}`, nil), 0, 0},
		{"null metadata", file(`{"__metadata__":null}`, nil), 0, 0},
		{"space padded", file(`{"a":`+f32x4+`}      `, d16), 1, 0},
		{"whitespace inside", file("{ \"a\" :\n\t"+f32x4+" }", d16), 1, 0},
		{"listed out of data order", file(`{"b":{"dtype":"U8","shape":[8],"data_offsets":[8,16]},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}`, d16), 2, 0},
		{"zero-size tensor", file(`{"a":`+f32x4+`,"z":{"dtype":"F32","shape":[3,0],"data_offsets":[16,16]}}`, d16), 2, 0},
		{"zero-size first", file(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":`+f32x4+`}`, d16), 2, 0},
		{"zero-size only", file(`{"z":{"dtype":"I64","shape":[0,5],"data_offsets":[0,0]}}`, nil), 1, 0},
		{"two zero-size at one offset", file(`{"y":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":`+f32x4+`}`, d16), 3, 0},
		{"scalar", file(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"t":{"dtype":"F64","shape":[],"data_offsets":[8,16]}}`, d16), 2, 0},
		{"F8 dtypes", file(`{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"F8_E5M2","shape":[2,4],"data_offsets":[8,16]}}`, d16), 2, 0},
		{"unknown field skipped", file(`{"a":{"dtype":"F32","shape":[2,2],"extra":{"x":[1,{}]},"data_offsets":[0,16]}}`, d16), 1, 0},
		{"escaped name", file(`{"a\"\\\u00e9\ud83d\ude00":`+f32x4+`}`, d16), 1, 0},
		{"empty name", file(`{"":`+f32x4+`}`, d16), 1, 0},
		{"MaxDims dims", file(`{"a":{"dtype":"U8","shape":[`+strings.Repeat("1,", MaxDims-1)+`2],"data_offsets":[0,2]}}`, d16[:2]), 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := NewFile(bytes.NewReader(c.data), int64(len(c.data)), c.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Tensors()) != c.tensors || len(f.Metadata()) != c.meta {
				t.Fatalf("%d tensors, metadata %v", len(f.Tensors()), f.Metadata())
			}
			if c.meta == 0 && f.Metadata() != nil {
				t.Fatalf("metadata %v, want nil", f.Metadata())
			}
			checkLayout(t, f, int64(len(c.data)))
			specs, data := specsOf(t, f)
			out := writeMem(t, f.Metadata(), specs, data)
			g, err := NewFile(bytes.NewReader(out), int64(len(out)), "rewritten")
			if err != nil {
				t.Fatal(err)
			}
			sameContent(t, f, g)
		})
	}
}

// checkLayout asserts what validation promises: tensors in data order, inside
// the file, contiguous from the header to the end, each shape×dtype bytes.
func checkLayout(t testing.TB, f *File, size int64) {
	t.Helper()
	pos := f.HeaderSize()
	for _, ti := range f.Tensors() {
		if ti.Offset != pos || ti.Size < 0 || ti.Offset+ti.Size > size {
			t.Fatalf("tensor %q at [%d,+%d) breaks the layout (pos %d, size %d)", ti.Name, ti.Offset, ti.Size, pos, size)
		}
		if n := ti.NumElements(); n < 0 || n*int64(ti.DType.Size()) != ti.Size {
			t.Fatalf("tensor %q: %d elements of %s in %d bytes", ti.Name, n, ti.DType, ti.Size)
		}
		pos += ti.Size
	}
	if pos != size {
		t.Fatalf("tensors end at %d, file at %d", pos, size)
	}
}

// shortReader claims more bytes than it holds.
type shortReader struct{ b []byte }

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s.b).ReadAt(p, off)
}

// TestLyingSizeDoesNotAllocate: a ReaderAt whose claimed size is larger than
// its content, with a header length just under the limit, must fail with
// ErrTruncated without allocating the declared 100 MB.
func TestLyingSizeDoesNotAllocate(t *testing.T) {
	data := raw(MaxHeaderSize-1, `{"a":`, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewFile(shortReader{data}, MaxHeaderSize+8, "liar")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
	// One read chunk (10 MB) plus slack; the declared size is 100 MB.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 2*readChunk {
		t.Fatalf("allocated %d bytes for a %d-byte input", grew, len(data))
	}
}

// TestFormatErrorMessage pins the shape of the message people read.
func TestFormatErrorMessage(t *testing.T) {
	e := &FormatError{File: "model.safetensors", Tensor: "a.weight", Offset: 0x1234, Msg: `data offsets overlap "b"`, Err: ErrOffsets}
	if got, want := e.Error(), `safetensors: model.safetensors: tensor "a.weight": at byte 4660: data offsets overlap "b"`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	e = &FormatError{File: "x", Offset: noOffset, Err: ErrTruncated}
	if got, want := e.Error(), "safetensors: x: file truncated"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
