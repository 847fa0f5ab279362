package quant

import (
	"errors"
	"math"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// checkInt4 quantizes src as [n, k] and compares scales, zero points and
// every code (padding included) with refInt4, then checks the dequantization
// bound.
func checkInt4Against(t *testing.T, name string, src []float32, n, k int, p Int4Params) {
	t.Helper()
	np, ns, nz := Int4Sizes(n, k, p)
	packed, scales, zeros := make([]byte, np), make([]float32, ns), make([]byte, nz)
	err := QuantizeInt4(packed, scales, zeros, src, n, k, p)
	bs := p.BlockSize
	kb := (k + bs - 1) / bs
	wantErr := false
	var refs []refInt4Block
	for r := 0; r < n; r++ {
		for b := 0; b < kb; b++ {
			blk := src[r*k+b*bs : r*k+min((b+1)*bs, k)]
			rb, ok := refInt4(blk, bs, p.Symmetric, p.F16Scales)
			wantErr = wantErr || !ok
			refs = append(refs, rb)
		}
	}
	if wantErr {
		if !errors.Is(err, ErrRange) || fault.ClassOf(err) != fault.Unsupported {
			t.Fatalf("%s: err = %v, want ErrRange", name, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s %+v: %v", name, p, err)
	}
	codes := make([]uint8, bs)
	for i, rb := range refs {
		if math.Float32bits(scales[i]) != math.Float32bits(rb.scale) {
			t.Fatalf("%s %+v block %d: scale %g (%#x), want %g (%#x)", name, p, i, scales[i], math.Float32bits(scales[i]), rb.scale, math.Float32bits(rb.scale))
		}
		UnpackNibblesLowFirst(codes, packed[i*bs/2:(i+1)*bs/2])
		for j := range codes {
			if codes[j] != rb.codes[j] {
				t.Fatalf("%s %+v block %d elem %d: code %d, want %d (scale %g zp %d)", name, p, i, j, codes[j], rb.codes[j], rb.scale, rb.zp)
			}
		}
		if !p.Symmetric {
			r, b := i/kb, i%kb
			z := zeros[r*((kb+1)/2)+b/2] >> (4 * (b % 2)) & 0xF
			if int(z) != rb.zp {
				t.Fatalf("%s block %d: zp %d, want %d", name, i, z, rb.zp)
			}
		}
	}
	if !p.Symmetric && kb%2 == 1 {
		for r := 0; r < n; r++ {
			if zeros[r*((kb+1)/2)+kb/2]>>4 != 8 {
				t.Fatalf("%s: padding zero-point nibble of row %d = %d, want 8", name, r, zeros[r*((kb+1)/2)+kb/2]>>4)
			}
		}
	}
	deq := make([]float32, len(src))
	if err := DequantizeInt4(deq, packed, scales, zeros, n, k, p); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < n; r++ {
		for j := 0; j < k; j++ {
			i := r*kb + j/bs
			s := math.Abs(float64(scales[i]))
			x := float64(src[r*k+j])
			// Bound: half a step, or a whole step for the symmetric values
			// clamped at code 15 (x/scale beyond 7.5: the far end of a
			// block whose signed absmax has the other sign). The float32
			// roundings add a few ulps of the block range (≤ 8·scale):
			// 2^-18·scale covers them. With F16Scales the codes are exact for
			// the rounded scale, so the same bound holds.
			bound := s/2 + s*0x1p-18
			if p.Symmetric && x/float64(scales[i]) > 7.5 {
				bound = s + s*0x1p-18
			}
			// A subnormal scale carries an absolute rounding error of up
			// to 2^-150, multiplied by |q-zp| ≤ 16 on the way back.
			bound += 16 * 0x1p-150
			if p.F16Scales {
				// The scale was rounded to half (relative error ≤ 2^-11, or
				// absolute 2^-25 among half subnormals) after the range was
				// fixed, so the grid ends can move by up to 16 steps of that.
				bound += 16 * (s*0x1p-11 + 0x1p-25)
			}
			if d := math.Abs(x - float64(deq[r*k+j])); d > bound && s != 0 {
				t.Fatalf("%s %+v [%d,%d] x=%g: |x-x̂| = %g > %g (scale %g)", name, p, r, j, x, d, bound, scales[i])
			}
		}
	}
}

func int4Variants() []Int4Params {
	var ps []Int4Params
	for _, bs := range []int{16, 32, 128} {
		for _, sym := range []bool{true, false} {
			ps = append(ps, Int4Params{BlockSize: bs, Symmetric: sym})
		}
	}
	return append(ps, Int4Params{BlockSize: 32, Symmetric: true, F16Scales: true},
		Int4Params{BlockSize: 64, F16Scales: true})
}

func TestQuantizeInt4Adversarial(t *testing.T) {
	for name, src := range adversarialBlocks() {
		for _, p := range int4Variants() {
			for _, k := range []int{64, 48, 32, 7} { // 48, 7: K not a multiple of the block
				n := len(src) / k
				checkInt4Against(t, name, src[:n*k], n, k, p)
			}
		}
	}
}

func TestQuantizeInt4Random(t *testing.T) {
	r := newRand(5)
	for _, shape := range [][2]int{{1, 1}, {3, 17}, {8, 64}, {4, 100}, {16, 768}} {
		src := normals(r, shape[0]*shape[1], 0.05)
		for _, p := range int4Variants() {
			checkInt4Against(t, "random", src, shape[0], shape[1], p)
		}
	}
	// exact ties after the reciprocal multiply: scale 1 (block absmax -8)
	ties := make([]float32, 32)
	for i := range ties {
		ties[i] = float32(i%16) - 7.5
	}
	ties[0] = -8
	checkInt4Against(t, "ties", ties, 1, 32, Int4Params{BlockSize: 32, Symmetric: true})
	checkInt4Against(t, "ties", ties, 1, 32, Int4Params{BlockSize: 32})
}

// TestInt4ORTConventions pins the behaviour read from ORT's quantizer on
// small hand-computed blocks.
func TestInt4ORTConventions(t *testing.T) {
	p := Int4Params{BlockSize: 16, Symmetric: true}
	blk := make([]float32, 16)
	blk[0], blk[1], blk[2] = 4, -4, 2 // tie on magnitude: the negative wins
	packed, scales := make([]byte, 8), make([]float32, 1)
	if err := QuantizeInt4(packed, scales, nil, blk, 1, 16, p); err != nil {
		t.Fatal(err)
	}
	if scales[0] != 0.5 { // -(-4)/8
		t.Errorf("scale = %g, want 0.5", scales[0])
	}
	// 4/0.5+8 = 16 → 15; -4/0.5+8 = 0; 2/0.5+8 = 12; zeros → 8.
	// Byte 0 holds elements 0 (low) and 1 (high).
	if packed[0] != 0x0F || packed[1] != 0x8C || packed[2] != 0x88 {
		t.Errorf("packed = % x, want 0f 8c 88 ...", packed[:3])
	}
	// Asymmetric: [-1, 2] → scale 0.2, zp = round(5) = 5.
	pa := Int4Params{BlockSize: 16}
	for i := range blk {
		blk[i] = 0
	}
	blk[0], blk[1] = -1, 2
	zeros := make([]byte, 1)
	if err := QuantizeInt4(packed, scales, zeros, blk, 1, 16, pa); err != nil {
		t.Fatal(err)
	}
	if scales[0] != float32(3)/15 || zeros[0] != 0x85 {
		t.Errorf("scale %g zeros %#x, want %g and 0x85 (zp 5, padding 8)", scales[0], zeros[0], float32(3)/15)
	}
	if packed[0] != 0xF0 { // -1 → 0, 2 → 15
		t.Errorf("packed[0] = %#x, want 0xf0", packed[0])
	}
}

func TestInt4Errors(t *testing.T) {
	for _, bs := range []int{0, 8, 24, 8192} {
		p := Int4Params{BlockSize: bs, Symmetric: true}
		if err := p.Validate(); !errors.Is(err, ErrBlockSize) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("block %d: %v", bs, err)
		}
		if a, b, c := Int4Sizes(4, 64, p); a|b|c != 0 {
			t.Errorf("Int4Sizes with block %d = %d %d %d, want zeros", bs, a, b, c)
		}
	}
	p := Int4Params{BlockSize: 16}
	src := make([]float32, 32)
	src[17] = float32(math.Inf(1))
	np, ns, nz := Int4Sizes(1, 32, p)
	err := QuantizeInt4(make([]byte, np), make([]float32, ns), make([]byte, nz), src, 1, 32, p)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Index != 17 {
		t.Errorf("Inf: %v", err)
	}
	src[17] = float32(math.NaN())
	if err := QuantizeInt4(make([]byte, np), make([]float32, ns), make([]byte, nz), src, 1, 32, p); !errors.As(err, &nf) || nf.Index != 17 {
		t.Errorf("NaN: %v", err)
	}
	src[17] = math.MaxFloat32
	src[20] = -math.MaxFloat32 // same block: max-min overflows
	if err := QuantizeInt4(make([]byte, np), make([]float32, ns), make([]byte, nz), src, 1, 32, p); !errors.Is(err, ErrRange) {
		t.Errorf("range overflow: %v", err)
	}
	bad := [][3]int{{np - 1, ns, nz}, {np, ns + 1, nz}, {np, ns, nz + 1}}
	for _, b := range bad {
		if err := QuantizeInt4(make([]byte, b[0]), make([]float32, b[1]), make([]byte, b[2]), make([]float32, 32), 1, 32, p); !errors.Is(err, ErrLength) {
			t.Errorf("lengths %v: %v", b, err)
		}
		if err := DequantizeInt4(make([]float32, 32), make([]byte, b[0]), make([]float32, b[1]), make([]byte, b[2]), 1, 32, p); !errors.Is(err, ErrLength) {
			t.Errorf("dequant lengths %v: %v", b, err)
		}
	}
	if err := QuantizeInt4(nil, nil, nil, nil, 1<<40, 1<<40, p); !errors.Is(err, ErrLength) {
		t.Errorf("overflowing shape: %v", err)
	}
	fp := Int4Params{BlockSize: 16, Symmetric: true, F16Scales: true}
	big := make([]float32, 16)
	big[0] = 1e6 // scale 125000 > 65504
	if err := QuantizeInt4(make([]byte, 8), make([]float32, 1), nil, big, 1, 16, fp); !errors.Is(err, ErrRange) {
		t.Errorf("f16 scale overflow: %v", err)
	}
}
