package onnx

import (
	"math"
	"testing"
)

func TestDataTypeTable(t *testing.T) {
	// Numbers, names and widths as onnx.proto's TensorProto.DataType
	// comments state them.
	cases := []struct {
		d    DataType
		num  int32
		name string
		bits int
	}{
		{Undefined, 0, "UNDEFINED", 0}, {Float, 1, "FLOAT", 32}, {Uint8, 2, "UINT8", 8},
		{Int8, 3, "INT8", 8}, {Uint16, 4, "UINT16", 16}, {Int16, 5, "INT16", 16},
		{Int32, 6, "INT32", 32}, {Int64, 7, "INT64", 64}, {String, 8, "STRING", 0},
		{Bool, 9, "BOOL", 8}, {Float16, 10, "FLOAT16", 16}, {Double, 11, "DOUBLE", 64},
		{Uint32, 12, "UINT32", 32}, {Uint64, 13, "UINT64", 64}, {Complex64, 14, "COMPLEX64", 64},
		{Complex128, 15, "COMPLEX128", 128}, {BFloat16, 16, "BFLOAT16", 16},
		{Float8E4M3FN, 17, "FLOAT8E4M3FN", 8}, {Float8E4M3FNUZ, 18, "FLOAT8E4M3FNUZ", 8},
		{Float8E5M2, 19, "FLOAT8E5M2", 8}, {Float8E5M2FNUZ, 20, "FLOAT8E5M2FNUZ", 8},
		{Uint4, 21, "UINT4", 4}, {Int4, 22, "INT4", 4}, {Float4E2M1, 23, "FLOAT4E2M1", 4},
		{Float8E8M0, 24, "FLOAT8E8M0", 8}, {Uint2, 25, "UINT2", 2}, {Int2, 26, "INT2", 2},
	}
	for _, c := range cases {
		if int32(c.d) != c.num || c.d.String() != c.name || c.d.Bits() != c.bits {
			t.Errorf("%d: %s, %d bits; want %d %s %d", c.d, c.d, c.d.Bits(), c.num, c.name, c.bits)
		}
		if want := c.bits / 8; c.bits%8 == 0 && c.d.Size() != want || c.bits%8 != 0 && c.d.Size() != 0 {
			t.Errorf("%s: Size %d", c.d, c.d.Size())
		}
		if c.d.Known() != (c.d != Undefined) {
			t.Errorf("%s: Known %v", c.d, c.d.Known())
		}
	}
	if s := DataType(99).String(); s != "DataType(99)" || DataType(99).Known() || DataType(-1).Known() {
		t.Errorf("unknown type: %s", s)
	}
}

func TestByteLen(t *testing.T) {
	cases := []struct {
		d    DataType
		n    int64
		want int64
		ok   bool
	}{
		{Float, 3, 12, true}, {Float, 0, 0, true}, {Int4, 3, 2, true}, {Int4, 4, 2, true},
		{Uint4, 1, 1, true}, {Uint2, 5, 2, true}, {Int2, 8, 2, true}, {Complex128, 2, 32, true},
		{Bool, 7, 7, true}, {String, 1, 0, false}, {Undefined, 1, 0, false}, {Float, -1, 0, false},
		{Float, math.MaxInt64 / 4, math.MaxInt64 / 4 * 4, true}, {Float, math.MaxInt64/4 + 1, 0, false},
		{Int4, math.MaxInt64, math.MaxInt64/2 + 1, true},
	}
	for _, c := range cases {
		got, ok := c.d.ByteLen(c.n)
		if got != c.want || ok != c.ok {
			t.Errorf("%s.ByteLen(%d) = %d, %v; want %d, %v", c.d, c.n, got, ok, c.want, c.ok)
		}
	}
}

func TestSafetensorsNames(t *testing.T) {
	// Element sizes from the safetensors format description.
	size := map[string]int{
		"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "U32": 4, "I32": 4, "U64": 8, "I64": 8,
		"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "C64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
		"F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1, "F8_E8M0": 1,
	}
	for name, s := range size {
		d, ok := FromSafetensors(name)
		if !ok || d.Size() != s {
			t.Errorf("%s → %v, %v (size %d, want %d)", name, d, ok, d.Size(), s)
			continue
		}
		if back, ok := d.Safetensors(); !ok || back != name {
			t.Errorf("%s → %v → %q", name, d, back)
		}
	}
	want := map[string]DataType{"F32": Float, "F16": Float16, "BF16": BFloat16, "I64": Int64, "F8_E4M3": Float8E4M3FN, "BOOL": Bool}
	for name, d := range want {
		if got, _ := FromSafetensors(name); got != d {
			t.Errorf("%s → %v, want %v", name, got, d)
		}
	}
	for d := DataType(0); d < 30; d++ {
		if name, ok := d.Safetensors(); ok {
			if _, known := size[name]; !known {
				t.Errorf("%v → %q, not a safetensors dtype", d, name)
			}
		}
	}
	for _, name := range []string{"", "f32", "F4", "C128", "STRING", "I4"} {
		if d, ok := FromSafetensors(name); ok {
			t.Errorf("%q → %v", name, d)
		}
	}
}
