package quant

import (
	"math"
	"testing"
)

// f16Specials are the values the brief and IEEE corner cases call for.
func f16Specials() []float32 {
	f := math.Float32frombits
	v := []float32{
		0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 1.0 / 3,
		65504, -65504, 65519, 65519.996, 65520, -65520, nextUp(65520), 65536, 1e6, -1e30,
		math.MaxFloat32, -math.MaxFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)),
		f(0x7FC00000), f(0xFFC00000), f(0x7F800001), f(0xFF800001), // qNaN, sNaN
		f(0x7FBFFFFF), f(0x7F802000), f(0x7FFFFFFF), f(0x7F800FFF), // payloads in various bits
		0x1p-14, nextDown(0x1p-14), nextUp(0x1p-14), // smallest normal half
		0x1p-24, nextDown(0x1p-24), nextUp(0x1p-24), // smallest subnormal half
		0x1p-25, nextUp(0x1p-25), nextDown(0x1p-25), // half of it: ties to 0
		0x1.8p-24, 0x1.8p-25, 0x1.4p-24, // subnormal halfway cases
		0x1.ff8p-15, 0x1.ffcp-15, // largest subnormal half and the tie above it
		math.Float32frombits(1), math.Float32frombits(0x807FFFFF), // float32 subnormals
		1 + 0x1p-11, 1 + 0x1p-11 + 0x1p-23, 1 + 3*0x1p-11, // ties at 1: even, above, odd
		2048 + 1, 2048 + 3, 4096 + 2, // integer ties
	}
	return v
}

func TestF16BitsSpecials(t *testing.T) {
	for _, x := range f16Specials() {
		got, want := F16Bits(x), refF16(x)
		if got != want {
			t.Errorf("F16Bits(%g = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
	// Pinned by hand, independent of the reference.
	pins := map[float32]uint16{
		65504: 0x7BFF, 65519: 0x7BFF, 65520: 0x7C00, 0x1p-24: 0x0001, 0x1p-25: 0x0000,
		nextUp(0x1p-25): 0x0001, 0x1.8p-24: 0x0002, 1 + 0x1p-11: 0x3C00, 1 + 3*0x1p-11: 0x3C02,
		-2: 0xC000, 0x1p-14: 0x0400, 0.1: 0x2E66,
	}
	for x, want := range pins {
		if got := F16Bits(x); got != want {
			t.Errorf("F16Bits(%g) = %#04x, want %#04x", x, got, want)
		}
	}
}

// TestF16AllHalves checks every one of the 2^16 patterns: its value against
// a construction from the fields, and the round trip F16→F32→F16 (exact, NaNs
// made quiet), through the scalar and both bulk paths.
func TestF16AllHalves(t *testing.T) {
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	for _, h := range all {
		v := F16Value(h)
		want := refF16Value(h)
		if math.IsNaN(want) {
			b := math.Float32bits(v)
			if !math.IsNaN(float64(v)) || b&f32Quiet == 0 || b>>31 != uint32(h>>15) || (b>>13)&0x3FF != uint32(h)&0x3FF|0x200 {
				t.Fatalf("F16Value(%#04x) = %#08x, want quiet NaN with sign and payload", h, b)
			}
			continue
		}
		if float64(v) != want || math.Signbit(float64(v)) != (h&0x8000 != 0) {
			t.Fatalf("F16Value(%#04x) = %g, want %g", h, v, want)
		}
	}
	bothPaths(t, func(t *testing.T) {
		f := make([]float32, len(all))
		F16ToF32(f, all)
		back := make([]uint16, len(all))
		if ov := F32ToF16(back, f); ov != 0 {
			t.Errorf("round trip overflow = %d, want 0", ov)
		}
		for i, h := range all {
			if math.Float32bits(f[i]) != math.Float32bits(F16Value(h)) {
				t.Fatalf("F16ToF32[%#04x] = %#08x, want %#08x", h, math.Float32bits(f[i]), math.Float32bits(F16Value(h)))
			}
			want := h
			if h&0x7C00 == 0x7C00 && h&0x3FF != 0 {
				want |= f16Quiet
			}
			if back[i] != want {
				t.Fatalf("round trip %#04x → %#04x, want %#04x", h, back[i], want)
			}
		}
	})
}

// TestF16Boundaries converts, for every positive half, the float32 values at
// and around the midpoint to its successor: exact ties and one or two ulps
// either side, which is where rounding goes wrong if it does.
func TestF16Boundaries(t *testing.T) {
	var xs []float32
	for h := 0; h < 0x7C00; h++ {
		mid := float32((halfValues[h] + halfValues[h+1]) / 2) // exact in float32
		xs = append(xs, mid, nextUp(mid), nextDown(mid), nextUp(nextUp(mid)), nextDown(nextDown(mid)), -mid)
	}
	xs = append(xs, f16Specials()...)
	checkF16Bulk(t, xs)
}

func TestF16Random(t *testing.T) {
	r := newRand(1)
	xs := randomBits(r, 1<<18, false)
	xs = append(xs, normals(r, 1<<16, 1)...)
	xs = append(xs, normals(r, 1<<14, 1e5)...)
	checkF16Bulk(t, xs)
}

// checkF16Bulk compares F32ToF16 with refF16 element by element, and the
// overflow count with a direct count, on both paths and at odd lengths so the
// tails are covered.
func checkF16Bulk(t *testing.T, xs []float32) {
	t.Helper()
	wantOv := 0
	for _, x := range xs {
		if !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x)) && refF16(x)&0x7FFF == 0x7C00 {
			wantOv++
		}
	}
	bothPaths(t, func(t *testing.T) {
		got := make([]uint16, len(xs)+3)
		ov := F32ToF16(got[3:], xs)
		if ov != wantOv {
			t.Errorf("overflow = %d, want %d", ov, wantOv)
		}
		for i, x := range xs {
			if want := refF16(x); got[3+i] != want {
				t.Fatalf("F32ToF16[%d](%g = %#08x) = %#04x, want %#04x", i, x, math.Float32bits(x), got[3+i], want)
			}
		}
		for _, n := range []int{0, 1, 15, 16, 17, 31, 33} {
			if n > len(xs) {
				continue
			}
			part := make([]uint16, n)
			F32ToF16(part, xs[:n])
			for i := range part {
				if part[i] != got[3+i] {
					t.Fatalf("length %d: element %d = %#04x, want %#04x", n, i, part[i], got[3+i])
				}
			}
		}
	})
}

func TestF16OverflowCount(t *testing.T) {
	xs := []float32{65504, 65519.996, 65520, -65520, 1e10, float32(math.Inf(1)), float32(math.NaN()), -1e38, 70000}
	for len(xs) < 40 { // reach the vector path too
		xs = append(xs, 1)
	}
	bothPaths(t, func(t *testing.T) {
		dst := make([]uint16, len(xs))
		if got := F32ToF16(dst, xs); got != 5 {
			t.Errorf("overflow = %d, want 5 (65520, -65520, 1e10, -1e38, 70000)", got)
		}
	})
}

func TestF16ShortDstPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("F32ToF16 with a short dst did not panic")
		}
	}()
	F32ToF16(make([]uint16, 1), make([]float32, 2))
}
