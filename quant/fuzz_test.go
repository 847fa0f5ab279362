package quant

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// Fuzz targets: each quantizer against its reference on arbitrary float32
// bit patterns, and each dequantizer on arbitrary bytes (it must not panic).
// Seeds come from the adversarial blocks and from the quantizers' own output.

func floatsFromBytes(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func bytesFromFloats(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func hasNonFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return true
		}
	}
	return false
}

func seedFloats(f *testing.F, add func(b []byte)) {
	for _, v := range adversarialBlocks() {
		add(bytesFromFloats(v[:min(len(v), 256)]))
	}
	add(bytesFromFloats(nf4TieBlock()))
	add(bytesFromFloats([]float32{float32(math.NaN()), 1}))
	add(nil)
}

func FuzzF16(f *testing.F) {
	for _, x := range f16Specials() {
		f.Add(math.Float32bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint32) {
		x := math.Float32frombits(bits)
		if got, want := F16Bits(x), refF16(x); got != want {
			t.Fatalf("F16Bits(%#08x) = %#04x, want %#04x", bits, got, want)
		}
		if got, want := BF16Bits(x), refBF16(x); got != want {
			t.Fatalf("BF16Bits(%#08x) = %#04x, want %#04x", bits, got, want)
		}
		src := make([]float32, 19) // one vector chunk and a tail
		for i := range src {
			src[i] = math.Float32frombits(bits + uint32(i)*0x01000193)
		}
		a, b := make([]uint16, len(src)), make([]uint16, len(src))
		useAsm = true
		ova := F32ToF16(a, src)
		useAsm = false
		ovb := F32ToF16(b, src)
		useAsm = true
		if ova != ovb {
			t.Fatalf("overflow asm %d, go %d", ova, ovb)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("F32ToF16 paths differ at %#08x: %#04x vs %#04x", math.Float32bits(src[i]), a[i], b[i])
			}
		}
	})
}

func FuzzQuantizeInt8(f *testing.F) {
	seedFloats(f, func(b []byte) { f.Add(b, uint8(8)) })
	f.Fuzz(func(t *testing.T, data []byte, cols uint8) {
		src := floatsFromBytes(data)
		c := int(cols%64) + 1
		rows := len(src) / c
		src = src[:rows*c]
		q, scb := make([]int8, len(src)), make([]float32, rows)
		err := QuantizeInt8Rows(q, scb, src, rows, c)
		if hasNonFinite(src) {
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("non-finite input: err = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < rows; r++ {
			ws, wq := refInt8Row(src[r*c : (r+1)*c])
			if math.Float32bits(scb[r]) != math.Float32bits(ws) {
				t.Fatalf("row %d: SCB %g, want %g", r, scb[r], ws)
			}
			for i := range wq {
				if q[r*c+i] != wq[i] {
					t.Fatalf("[%d,%d] x=%g: %d, want %d", r, i, src[r*c+i], q[r*c+i], wq[i])
				}
			}
		}
		deq := make([]float32, len(src))
		if err := DequantizeInt8Rows(deq, q, scb, rows, c); err != nil || hasNonFinite(deq) {
			t.Fatalf("dequant: %v, non-finite %v", err, hasNonFinite(deq))
		}
	})
}

func FuzzQuantizeInt4(f *testing.F) {
	seedFloats(f, func(b []byte) { f.Add(b, uint16(40), uint8(0), true) })
	f.Fuzz(func(t *testing.T, data []byte, k uint16, bsLog uint8, sym bool) {
		src := floatsFromBytes(data)
		kk := int(k%300) + 1
		n := len(src) / kk
		src = src[:n*kk]
		p := Int4Params{BlockSize: 16 << (bsLog % 4), Symmetric: sym, F16Scales: bsLog&8 != 0}
		if hasNonFinite(src) {
			// The first bad block in row-major block order decides the error.
			var want error
			kb := (kk + p.BlockSize - 1) / p.BlockSize
			for i := 0; i < n*kb && want == nil; i++ {
				r, b := i/kb, i%kb
				blk := src[r*kk+b*p.BlockSize : r*kk+min((b+1)*p.BlockSize, kk)]
				if hasNonFinite(blk) {
					want = ErrNonFinite
				} else if _, ok := refInt4(blk, p.BlockSize, p.Symmetric, p.F16Scales); !ok {
					want = ErrRange
				}
			}
			np, ns, nz := Int4Sizes(n, kk, p)
			err := QuantizeInt4(make([]byte, np), make([]float32, ns), make([]byte, nz), src, n, kk, p)
			if !errors.Is(err, want) {
				t.Fatalf("non-finite input: err = %v, want %v", err, want)
			}
			return
		}
		checkInt4Against(t, "fuzz", src, n, kk, p)
	})
}

func FuzzQuantizeNF4(f *testing.F) {
	seedFloats(f, func(b []byte) { f.Add(b, uint16(64)) })
	f.Fuzz(func(t *testing.T, data []byte, bs uint16) {
		src := floatsFromBytes(data)
		b := 2 * (int(bs%200) + 1)
		if hasNonFinite(src) {
			np, na := NF4Sizes(len(src), b)
			if err := QuantizeNF4(make([]byte, np), make([]float32, na), src, b); !errors.Is(err, ErrNonFinite) {
				t.Fatalf("non-finite input: err = %v", err)
			}
			return
		}
		for _, asm := range []bool{true, false} {
			useAsm = asm
			checkNF4(t, "fuzz", src, b)
		}
		useAsm = true
	})
}

func FuzzDoubleQuant(f *testing.F) {
	seedFloats(f, func(b []byte) { f.Add(b, uint16(256)) })
	f.Fuzz(func(t *testing.T, data []byte, nb uint16) {
		am := floatsFromBytes(data)
		for i, a := range am { // absmax values are magnitudes
			am[i] = float32(math.Abs(float64(a)))
		}
		b := int(nb%MaxNestedBlockSize) + 1
		if hasNonFinite(am) {
			_, err := DoubleQuant(make([]uint8, len(am)), make([]float32, (len(am)+b-1)/b), am, b)
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("non-finite input: err = %v", err)
			}
			return
		}
		checkDoubleQuant(t, "fuzz", am, b)
	})
}

// FuzzDequantize feeds arbitrary bytes to every dequantizer: packed codes,
// zero points and dynamic-map codes are untrusted.
func FuzzDequantize(f *testing.F) {
	src := normals(newRand(13), 96, 1)
	packed, absmax := make([]byte, 48), make([]float32, 2)
	if err := QuantizeNF4(packed, absmax, src, 64); err != nil {
		f.Fatal(err)
	}
	f.Add(packed, uint8(3))
	f.Add([]byte{0xFF, 0x00, 0x7F, 0x80}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, shape uint8) {
		n := 2 * len(data)
		dst := make([]float32, n)
		am := make([]float32, (n+63)/64)
		for i := range am {
			am[i] = float32(i + 1)
		}
		if err := DequantizeNF4(dst, data, am, 64); err != nil {
			t.Fatal(err)
		}
		if hasNonFinite(dst) {
			t.Fatal("NF4 dequant produced a non-finite value from finite scales")
		}
		back := make([]float32, len(data))
		nested := make([]float32, (len(data)+255)/256)
		for i := range nested {
			nested[i] = 0.5
		}
		if err := UndoDoubleQuant(back, data, nested, 0.25, 256); err != nil || hasNonFinite(back) {
			t.Fatalf("undo double quant: %v", err)
		}
		p := Int4Params{BlockSize: 16 << (shape % 3), Symmetric: shape&4 != 0}
		k := int(shape%37) + 1
		np, ns, nz := Int4Sizes(1, k, p)
		if len(data) < np+nz {
			return
		}
		scales := make([]float32, ns)
		for i := range scales {
			scales[i] = 0.1
		}
		out := make([]float32, k)
		if err := DequantizeInt4(out, data[:np], scales, data[np:np+nz], 1, k, p); err != nil || hasNonFinite(out) {
			t.Fatalf("int4 dequant: %v", err)
		}
		codes := make([]uint8, 2*len(data))
		UnpackNibblesLowFirst(codes, data)
		UnpackNibblesHighFirst(codes, data)
	})
}

// Crashers found by fuzzing, kept by name (their corpus files live in
// testdata/fuzz too). Both were bounds in the tests, not wrong codes: a
// subnormal scale or absmax rounds in absolute steps of 2^-150.
func TestFuzzRegressions(t *testing.T) {
	sub := make([]float32, 16)
	sub[0] = 4.90454462513686e-44 // block absmax 35 subnormal ulps: scale -6e-45
	checkInt4Against(t, "subnormal-scale", sub, 1, 16, Int4Params{BlockSize: 16, Symmetric: true})
	checkDoubleQuant(t, "subnormal-absmax", []float32{math.Float32frombits(0x3030), math.Float32frombits(0x3130)}, 256)
}
