package quant

import (
	"math"
	"testing"
)

func bf16Inputs() []float32 {
	f := math.Float32frombits
	xs := []float32{
		0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 3.14159,
		math.MaxFloat32, -math.MaxFloat32, f(0x7F7F7FFF), f(0x7F7F8000), f(0x7F7F8001), f(0x7F7F0000),
		float32(math.Inf(1)), float32(math.Inf(-1)),
		f(0x7FC00000), f(0xFF800001), f(0x7F800001), f(0x7FBF0000), f(0x7F80FFFF), // NaNs
		f(1), f(0x00008000), f(0x00018000), f(0x007FFFFF), // subnormals and subnormal ties
		f(0x3F808000), f(0x3F818000), f(0x3F808001), f(0x3F807FFF), // ties at 1: even, odd, above, below
	}
	// every tie and its neighbours in a spread of binades
	for e := uint32(0); e < 255; e += 7 {
		for _, m := range []uint32{0x8000, 0x18000, 0x7F8000} {
			b := e<<23 | m
			xs = append(xs, f(b), f(b+1), f(b-1), f(b|1<<31))
		}
	}
	return xs
}

func TestBF16(t *testing.T) {
	r := newRand(2)
	xs := append(bf16Inputs(), randomBits(r, 1<<17, false)...)
	xs = append(xs, normals(r, 1<<14, 1)...)
	wantOv := 0
	for _, x := range xs {
		if want := refBF16(x); BF16Bits(x) != want {
			t.Fatalf("BF16Bits(%#08x) = %#04x, want %#04x", math.Float32bits(x), BF16Bits(x), want)
		}
		if !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x)) && refBF16(x)&0x7FFF == 0x7F80 {
			wantOv++
		}
	}
	if wantOv == 0 {
		t.Fatal("inputs have no overflow case")
	}
	bothPaths(t, func(t *testing.T) {
		dst := make([]uint16, len(xs))
		if ov := F32ToBF16(dst, xs); ov != wantOv {
			t.Errorf("overflow = %d, want %d", ov, wantOv)
		}
		for i, x := range xs {
			if dst[i] != refBF16(x) {
				t.Fatalf("F32ToBF16[%d](%#08x) = %#04x, want %#04x", i, math.Float32bits(x), dst[i], refBF16(x))
			}
		}
	})
	pins := map[uint32]uint16{0x3F808000: 0x3F80, 0x3F818000: 0x3F82, 0x7F7F8000: 0x7F80, 0x7F7F7FFF: 0x7F7F, 0xFFC00001: 0xFFC0, 0x7F800001: 0x7FC0}
	for b, want := range pins {
		if got := BF16Bits(math.Float32frombits(b)); got != want {
			t.Errorf("BF16Bits(%#08x) = %#04x, want %#04x", b, got, want)
		}
	}
}

// TestBF16AllValues round-trips every bfloat16 pattern.
func TestBF16AllValues(t *testing.T) {
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	f := make([]float32, len(all))
	BF16ToF32(f, all)
	bothPaths(t, func(t *testing.T) {
		back := make([]uint16, len(all))
		if ov := F32ToBF16(back, f); ov != 0 {
			t.Errorf("overflow = %d, want 0", ov)
		}
		for i, h := range all {
			b := math.Float32bits(f[i])
			nan := h&0x7F80 == 0x7F80 && h&0x7F != 0
			switch {
			case nan && (b != (uint32(h)<<16|f32Quiet) || back[i] != h|bf16Quiet):
				t.Fatalf("NaN %#04x → %#08x → %#04x", h, b, back[i])
			case !nan && (b != uint32(h)<<16 || back[i] != h):
				t.Fatalf("%#04x → %#08x → %#04x", h, b, back[i])
			}
		}
	})
}
