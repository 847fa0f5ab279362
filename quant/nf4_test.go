package quant

import (
	"errors"
	"math"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// bnbNF4Literals are the threshold constants exactly as they are written in
// bitsandbytes' dQuantizeNF4 (csrc/kernels.cu), as float literals.
var bnbNF4Literals = []string{
	"-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
	"-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
	"0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
	"0.5016634166240692", "0.6427869200706482", "0.8614784181118011",
}

func TestNF4CodebookPinned(t *testing.T) {
	for i, v := range pinnedNF4 {
		if NF4Codebook[i] != float32(v) || float64(NF4Codebook[i]) != v {
			t.Errorf("NF4Codebook[%d] = %v, want %v (exactly)", i, NF4Codebook[i], v)
		}
	}
	for i := range bnbNF4Literals {
		th := nf4Thresholds[i]
		if float64(th) != refNF4Thresholds[i] {
			t.Errorf("threshold %d = %v, want the kernel literal %s = %v", i, th, bnbNF4Literals[i], refNF4Thresholds[i])
		}
		// The exact midpoint of two float32 entries has at most 25
		// significant bits: it is a float32 or lies halfway between two.
		// The literal must be that float32 or one of those two neighbours.
		m := (pinnedNF4[i] + pinnedNF4[i+1]) / 2
		lo, hi := float64(nextDown(float32(m))), float64(nextUp(float32(m)))
		if float64(float32(m)) == m {
			lo, hi = m, m
		}
		if float64(th) < lo || float64(th) > hi {
			t.Errorf("threshold %d = %v is not next to the midpoint %v", i, th, m)
		}
	}
}

// TestNF4LiteralVersusMidpoint pins a consequence of the kernel's float
// literals: where the literal rounds above the exact midpoint, the float32
// equal to the literal is nearer the upper entry yet gets the lower code
// (x > t fails). Threshold 8 (between codes 8 and 9) is such a case.
func TestNF4LiteralVersusMidpoint(t *testing.T) {
	m := (pinnedNF4[8] + pinnedNF4[9]) / 2
	th := nf4Thresholds[8]
	if float64(th) <= m {
		t.Fatalf("threshold 8 = %v is not above the midpoint %v", th, m)
	}
	if float64(th)-pinnedNF4[8] <= pinnedNF4[9]-float64(th) {
		t.Fatal("the literal is not nearer the upper entry")
	}
	if c := nf4Code(th); c != 8 {
		t.Errorf("code(%v) = %d, want 8 as the kernel decides", th, c)
	}
}

// TestNF4CodeAtThresholds feeds the code function values exactly on each
// threshold (must take the lower code, as x > t fails) and one ulp either
// side, plus every value of the bucket table's edges.
func TestNF4CodeAtThresholds(t *testing.T) {
	var ys []float32
	for _, th := range nf4Thresholds {
		ys = append(ys, th, nextUp(th), nextDown(th), nextUp(nextUp(th)))
	}
	for b := 0; b <= nf4Buckets; b++ {
		e := float32(b-nf4Scale) / nf4Scale
		ys = append(ys, e, nextUp(e), nextDown(e))
	}
	ys = append(ys, -1, 1, nextUp(1), nextDown(-1), 0, float32(math.Copysign(0, -1)))
	for _, y := range ys {
		if got, want := nf4Code(y), refNF4Code(float64(y)); got != want {
			t.Errorf("nf4Code(%v) = %d, want %d", y, got, want)
		}
	}
	for i, th := range nf4Thresholds {
		if nf4Code(th) != uint8(i) || nf4Code(nextUp(th)) != uint8(i+1) {
			t.Errorf("threshold %d: code(t) = %d, code(t+ulp) = %d, want %d and %d", i, nf4Code(th), nf4Code(nextUp(th)), i, i+1)
		}
	}
}

// nf4TieBlock is a block whose normalized values land exactly on the
// thresholds and next to them: absmax is 1, so x·(1/absmax) = x.
func nf4TieBlock() []float32 {
	v := []float32{1}
	for _, th := range nf4Thresholds {
		v = append(v, th, nextUp(th), nextDown(th))
	}
	for len(v) < 64 {
		v = append(v, 0)
	}
	return v
}

func checkNF4(t *testing.T, name string, src []float32, bs int) {
	t.Helper()
	np, na := NF4Sizes(len(src), bs)
	packed, absmax := make([]byte, np), make([]float32, na)
	if err := QuantizeNF4(packed, absmax, src, bs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	wantCodes, wantAbsmax := refNF4(src, bs)
	for i := range absmax {
		if math.Float32bits(absmax[i]) != math.Float32bits(wantAbsmax[i]) {
			t.Fatalf("%s bs=%d: absmax[%d] = %g, want %g", name, bs, i, absmax[i], wantAbsmax[i])
		}
	}
	codes := make([]uint8, len(wantCodes))
	UnpackNibblesHighFirst(codes, packed)
	for i := range codes {
		if codes[i] != wantCodes[i] {
			x := float32(0)
			if i < len(src) {
				x = src[i]
			}
			t.Fatalf("%s bs=%d n=%d: code[%d] (x=%g, absmax %g) = %d, want %d", name, bs, len(src), i, x, absmax[min(i/bs, len(absmax)-1)], codes[i], wantCodes[i])
		}
	}
	deq := make([]float32, len(src))
	if err := DequantizeNF4(deq, packed, absmax, bs); err != nil {
		t.Fatal(err)
	}
	// Bound: half the widest codebook gap (-1 to -0.696) times absmax; the
	// float32 roundings of 1/absmax, x/absmax and code·absmax add at most
	// 3·2^-24·absmax, and 2^-20·absmax covers them.
	halfGap := 0.0
	for i := 0; i < 15; i++ {
		halfGap = math.Max(halfGap, (pinnedNF4[i+1]-pinnedNF4[i])/2)
	}
	for i, x := range src {
		am := float64(absmax[i/bs])
		if d := math.Abs(float64(x) - float64(deq[i])); d > am*halfGap+am*0x1p-20 {
			t.Fatalf("%s [%d]: |x-x̂| = %g > %g", name, i, d, am*halfGap)
		}
	}
}

func TestQuantizeNF4(t *testing.T) {
	cases := adversarialBlocks()
	cases["ties"] = nf4TieBlock()
	r := newRand(6)
	cases["random-bits"] = randomBits(r, 1024, true)
	for name, src := range cases {
		bothPaths(t, func(t *testing.T) {
			for _, bs := range []int{64, 32, 128, 2, 6} {
				checkNF4(t, name, src, bs)
				checkNF4(t, name+"-odd", src[:len(src)-1], bs)   // odd length
				checkNF4(t, name+"-tail", src[:len(src)-20], bs) // partial last block
			}
		})
	}
}

// TestNF4Layout pins the byte layout: element 2j in the high nibble, odd
// length padded with the code of 0.0, a zero block all 0x77.
func TestNF4Layout(t *testing.T) {
	src := make([]float32, 64+65)
	src[0], src[1] = -1, 1 // codes 0 and 15
	src[2] = 0.5           // code 12: below the 12/13 threshold 0.50166
	src[64] = 2            // second block: absmax 2; the rest zeros, last element odd
	np, na := NF4Sizes(len(src), 64)
	packed, absmax := make([]byte, np), make([]float32, na)
	if err := QuantizeNF4(packed, absmax, src, 64); err != nil {
		t.Fatal(err)
	}
	if packed[0] != 0x0F || packed[1] != 0xC7 {
		t.Errorf("packed[0:2] = % x, want 0f c7", packed[:2])
	}
	if packed[32] != 0xF7 || packed[len(packed)-1] != 0x77 || absmax[1] != 2 {
		t.Errorf("second block: %x ... %x absmax %g", packed[32], packed[len(packed)-1], absmax[1])
	}
	zero := make([]float32, 64)
	zp := make([]byte, 32)
	am := []float32{-1}
	if err := QuantizeNF4(zp, am, zero, 64); err != nil {
		t.Fatal(err)
	}
	for _, b := range zp {
		if b != 0x77 || am[0] != 0 {
			t.Fatalf("zero block: byte %#x absmax %g, want 0x77 and 0", b, am[0])
		}
	}
}

func TestNF4Errors(t *testing.T) {
	for _, bs := range []int{0, 1, 3, 8192} {
		err := QuantizeNF4(make([]byte, 32), make([]float32, 1), make([]float32, 64), bs)
		if !errors.Is(err, ErrBlockSize) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("block %d: %v", bs, err)
		}
		if err := DequantizeNF4(make([]float32, 64), make([]byte, 32), make([]float32, 1), bs); !errors.Is(err, ErrBlockSize) {
			t.Errorf("dequant block %d: %v", bs, err)
		}
	}
	src := make([]float32, 130)
	src[129] = float32(math.NaN())
	err := QuantizeNF4(make([]byte, 65), make([]float32, 3), src, 64)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Index != 129 {
		t.Errorf("NaN: %v", err)
	}
	for _, l := range [][2]int{{64, 3}, {65, 2}, {65, 4}} {
		if err := QuantizeNF4(make([]byte, l[0]), make([]float32, l[1]), make([]float32, 130), 64); !errors.Is(err, ErrLength) {
			t.Errorf("lengths %v: %v", l, err)
		}
		if err := DequantizeNF4(make([]float32, 130), make([]byte, l[0]), make([]float32, l[1]), 64); !errors.Is(err, ErrLength) {
			t.Errorf("dequant lengths %v: %v", l, err)
		}
	}
}

// TestDequantizeNF4Paths checks every code byte, in every position of the
// 8-byte groups and tails, on both paths, against the definition
// ŵ = NF4Codebook[code]·absmax evaluated per element, bit for bit (the
// kernel does the same float32 multiplications), for scales that are
// normal, subnormal, huge, negative, zero, infinite and NaN.
func TestDequantizeNF4Paths(t *testing.T) {
	packedAll := make([]byte, 600)
	for i := range packedAll {
		packedAll[i] = byte(i*7 + i/256)
	}
	scales := []float32{0.37, 1e-42, 3e38, -2.5, 0, float32(math.Inf(1)), float32(math.NaN())}
	bothPaths(t, func(t *testing.T) {
		for _, bs := range []int{2, 16, 18, 64, 130, 1024} {
			for _, n := range []int{1, 15, 16, 17, 31, 129, 1023, 1111} {
				np, na := NF4Sizes(n, bs)
				packed := packedAll[:np]
				absmax := make([]float32, na)
				for i := range absmax {
					absmax[i] = scales[i%len(scales)]
				}
				dst := make([]float32, n)
				if err := DequantizeNF4(dst, packed, absmax, bs); err != nil {
					t.Fatal(err)
				}
				for i, x := range dst {
					c := packed[i/2] >> 4
					if i%2 == 1 {
						c = packed[i/2] & 0xF
					}
					want := NF4Codebook[c] * absmax[i/bs]
					if math.Float32bits(x) != math.Float32bits(want) {
						t.Fatalf("bs %d n %d: element %d (code %d, absmax %g) = %g, want %g", bs, n, i, c, absmax[i/bs], x, want)
					}
				}
			}
		}
	})
}
