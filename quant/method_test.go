package quant

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Tests of the error-minimising 4-bit methods against float64 references
// written here independently of method.go, hqq.go and nf4_mse.go.

// methodBlocks returns small test matrices [n, k] of several shapes and
// distributions: Gaussian, heavy-tailed (a Gaussian divided by a uniform),
// one outlier per row, all-equal values, a zero row, and a K that is not a
// multiple of the block.
func methodBlocks(r *rand.Rand) map[string]struct {
	v    []float32
	n, k int
} {
	out := map[string]struct {
		v    []float32
		n, k int
	}{}
	add := func(name string, v []float32, n, k int) {
		out[name] = struct {
			v    []float32
			n, k int
		}{v, n, k}
	}
	add("gauss", normals(r, 8*128, 0.02), 8, 128)
	heavy := normals(r, 6*96, 1)
	for i := range heavy {
		heavy[i] /= float32(0.2 + r.Float64())
	}
	add("heavy", heavy, 6, 96)
	outl := normals(r, 4*64, 0.05)
	for row := 0; row < 4; row++ {
		outl[row*64+r.IntN(64)] = 1.5 * float32(1-2*(row%2))
	}
	add("outlier", outl, 4, 64)
	cst := make([]float32, 2*64)
	for i := range cst {
		cst[i] = 0.25
	}
	add("constant", cst, 2, 64)
	zr := normals(r, 3*64, 1)
	clear(zr[64:128])
	add("zero-row", zr, 3, 64)
	add("ragged", normals(r, 5*72, 0.1), 5, 72)
	pos := normals(r, 4*64, 1)
	for i := range pos {
		pos[i] = float32(math.Abs(float64(pos[i]))) + 0.5
	}
	add("positive", pos, 4, 64)
	return out
}

// refBlockErr64 is the float64 squared error of a block quantized with the
// nearest code of the grid {(c - zp)·s : c in 0..15}: on a uniform grid the
// nearest code is x/s + zp rounded and clamped to 0..15.
func refBlockErr64(blk []float32, s float64, zp int) float64 {
	var e float64
	for _, x := range blk {
		c := math.Min(math.Max(math.Round(float64(x)/s+float64(zp)), 0), 15)
		d := float64(x) - (c-float64(zp))*s
		e += d * d
	}
	return e
}

// refScales is the number of scales the exhaustive references try.
const refScales = 1000

// refBestInt4 is an exhaustive float64 search: every zero point allowed
// (8 only when symmetric) and refScales scales from 0.2 to 1.2 times the block's
// min/max step, nearest codes. It is the yardstick the methods must come
// close to.
func refBestInt4(blk []float32, sym bool) float64 {
	lo, hi := 0.0, 0.0
	for _, x := range blk {
		lo, hi = math.Min(lo, float64(x)), math.Max(hi, float64(x))
	}
	step := (hi - lo) / 15
	if sym {
		step = math.Max(-lo, hi) / 8
	}
	if step == 0 {
		return 0
	}
	best := math.Inf(1)
	zps := []int{8}
	if !sym {
		zps = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	}
	for _, zp := range zps {
		for i := 0; i <= refScales; i++ {
			s := step * (0.2 + float64(i)/refScales)
			best = math.Min(best, refBlockErr64(blk, s, zp))
			if sym {
				best = math.Min(best, refBlockErr64(blk, -s, zp))
			}
		}
	}
	return best
}

// refRTNErr64 is the squared error of ORT's round-to-nearest parameters
// (refInt4 in ref_test.go) with those exact codes.
func refRTNErr64(blk []float32, bs int, sym bool) float64 {
	rb, _ := refInt4(blk, bs, sym, false)
	var e float64
	for i, x := range blk {
		d := float64(x) - float64(int(rb.codes[i])-rb.zp)*float64(rb.scale)
		e += d * d
	}
	return e
}

type int4Out struct {
	packed []byte
	scales []float32
	zeros  []byte
}

func quantInt4(t *testing.T, m Method, src []float32, n, k int, p Int4Params) int4Out {
	t.Helper()
	np, ns, nz := Int4Sizes(n, k, p)
	o := int4Out{make([]byte, np), make([]float32, ns), make([]byte, nz)}
	if err := QuantizeInt4With(m, o.packed, o.scales, o.zeros, src, n, k, p); err != nil {
		t.Fatalf("%s %+v: %v", m, p, err)
	}
	return o
}

// TestInt4MethodsFloat64 checks every block of every test matrix:
//   - the codes are a nearest code for the stored scale and zero point (what
//     makes them a valid MatMulNBits encoding of that scale: any other code
//     is a worse reconstruction), within float32 rounding of x/scale;
//   - padding codes equal the zero point;
//   - the error (through DequantizeInt4) is at most round-to-nearest's;
//   - over each matrix, the error is within tol of an exhaustive float64
//     search over every zero point and refScales scales per block. Single
//     blocks can miss the exhaustive optimum by more (the error is a jagged
//     function of the scale on a small block, and a grid of 16 clipping
//     factors steps over narrow minima); the sum is what SQNR sees.
func TestInt4MethodsFloat64(t *testing.T) {
	for name, c := range methodBlocks(newRand(11)) {
		for _, bs := range []int{16, 64} {
			// Measured worst ratios to the exhaustive search: 1.18 at block
			// 16 (few elements, jagged error), 1.05 at block 64.
			tol := 1.08
			if bs < 64 {
				tol = 1.25
			}
			for _, tc := range []struct {
				m   Method
				sym bool
			}{{MethodMSE, true}, {MethodMSE, false}, {MethodHQQ, false}} {
				p := Int4Params{BlockSize: bs, Symmetric: tc.sym}
				o := quantInt4(t, tc.m, c.v, c.n, c.k, p)
				deq := make([]float32, len(c.v))
				if err := DequantizeInt4(deq, o.packed, o.scales, o.zeros, c.n, c.k, p); err != nil {
					t.Fatal(err)
				}
				kb := (c.k + bs - 1) / bs
				codes := make([]uint8, bs)
				var sumErr, sumRef float64
				for r := 0; r < c.n; r++ {
					for b := 0; b < kb; b++ {
						i := r*kb + b
						lo, hi := b*bs, min((b+1)*bs, c.k)
						blk := c.v[r*c.k+lo : r*c.k+hi]
						got := deq[r*c.k+lo : r*c.k+hi]
						s := float64(o.scales[i])
						zp := 8
						if !tc.sym {
							zp = int(o.zeros[r*((kb+1)/2)+b/2] >> (4 * (b % 2)) & 0xF)
						}
						UnpackNibblesLowFirst(codes, o.packed[i*bs/2:(i+1)*bs/2])
						var e float64
						for j, x := range blk {
							d := float64(x) - float64(got[j])
							e += d * d
							if near := math.Sqrt(refBlockErr64([]float32{x}, s, zp)); math.Abs(d) > near+math.Abs(s)*0x1p-20+1e-30 {
								t.Fatalf("%s %s bs %d sym %v block %d elem %d: |x-ŵ| %g, nearest code %g (scale %g zp %d)",
									name, tc.m, bs, tc.sym, i, j, math.Abs(d), near, s, zp)
							}
						}
						for j := hi - lo; j < bs; j++ {
							if int(codes[j]) != zp {
								t.Fatalf("%s %s block %d: padding code %d, want zp %d", name, tc.m, i, codes[j], zp)
							}
						}
						// The methods compare candidates by this same float64
						// sum, RTN's included: no slack is needed.
						if rtn := refRTNErr64(blk, bs, tc.sym); e > rtn {
							t.Fatalf("%s %s bs %d sym %v block %d: error %g > rtn %g", name, tc.m, bs, tc.sym, i, e, rtn)
						}
						sumErr += e
						sumRef += refBestInt4(blk, tc.sym)
					}
				}
				t.Logf("%s %s bs %d sym %v: error %.4g = %.3f × exhaustive", name, tc.m, bs, tc.sym, sumErr, sumErr/sumRef)
				if sumErr > sumRef*tol+1e-30 {
					t.Errorf("%s %s bs %d sym %v: error %g > %.2f × exhaustive %g", name, tc.m, bs, tc.sym, sumErr, tol, sumRef)
				}
			}
		}
	}
}

// TestInt4MethodsGain: on Gaussian weights (the shape of trained ones) the
// methods must buy what the issue asks: a clipping search 0.4–0.8 dB, and
// the best method ≥ 0.6 dB over symmetric round-to-nearest, at block 32 and
// 128. Measured (this seed): mse 0.43/0.58 dB, hqq 0.88/0.76 dB; the bounds
// leave room for another seed, not for a regression.
func TestInt4MethodsGain(t *testing.T) {
	const n, k = 256, 512
	src := normals(newRand(5), n*k, 0.02)
	sqnr := func(m Method, p Int4Params) float64 {
		o := quantInt4(t, m, src, n, k, p)
		deq := make([]float32, len(src))
		if err := DequantizeInt4(deq, o.packed, o.scales, o.zeros, n, k, p); err != nil {
			t.Fatal(err)
		}
		return Compare(src, deq).SQNRdB
	}
	for _, bs := range []int{32, 128} {
		rtn := sqnr(MethodRTN, Int4Params{BlockSize: bs, Symmetric: true})
		mse := sqnr(MethodMSE, Int4Params{BlockSize: bs, Symmetric: true})
		hqq := sqnr(MethodHQQ, Int4Params{BlockSize: bs})
		t.Logf("block %d: rtn %.3f dB, mse %+.3f, hqq %+.3f", bs, rtn, mse-rtn, hqq-rtn)
		if mse-rtn < 0.35 {
			t.Errorf("block %d: mse gains %.3f dB over rtn, want ≥ 0.35", bs, mse-rtn)
		}
		if hqq-rtn < 0.6 {
			t.Errorf("block %d: hqq gains %.3f dB over rtn, want ≥ 0.6", bs, hqq-rtn)
		}
	}
}

// TestMethodsDeterministic: the same input gives the same bytes, and
// quantizing the rows in two halves (as two goroutines would) gives the bytes
// of the whole: blocks are independent.
func TestMethodsDeterministic(t *testing.T) {
	const n, k = 8, 256
	src := normals(newRand(3), n*k, 1)
	for _, tc := range []struct {
		m Method
		p Int4Params
	}{{MethodMSE, Int4Params{BlockSize: 32, Symmetric: true}}, {MethodHQQ, Int4Params{BlockSize: 64}}} {
		a := quantInt4(t, tc.m, src, n, k, tc.p)
		b := quantInt4(t, tc.m, src, n, k, tc.p)
		top := quantInt4(t, tc.m, src[:n/2*k], n/2, k, tc.p)
		bot := quantInt4(t, tc.m, src[n/2*k:], n/2, k, tc.p)
		if !slices.Equal(a.packed, b.packed) || !slices.Equal(a.scales, b.scales) || !slices.Equal(a.zeros, b.zeros) {
			t.Fatalf("%s: two runs differ", tc.m)
		}
		if !slices.Equal(a.packed, append(top.packed, bot.packed...)) || !slices.Equal(a.scales, append(top.scales, bot.scales...)) ||
			!slices.Equal(a.zeros, append(top.zeros, bot.zeros...)) {
			t.Fatalf("%s: row halves differ from the whole", tc.m)
		}
	}
}

// TestInt4MethodF16Scales: with F16Scales every stored scale is a half value
// and the codes are nearest for it.
func TestInt4MethodF16Scales(t *testing.T) {
	const n, k = 4, 128
	src := normals(newRand(8), n*k, 0.3)
	for _, m := range []Method{MethodMSE, MethodHQQ} {
		p := Int4Params{BlockSize: 32, F16Scales: true}
		o := quantInt4(t, m, src, n, k, p)
		for i, s := range o.scales {
			if F16Value(F16Bits(s)) != s {
				t.Fatalf("%s: scale %d = %g is not a half value", m, i, s)
			}
		}
	}
}

func TestMethodErrors(t *testing.T) {
	src := normals(newRand(1), 2*32, 1)
	p := Int4Params{BlockSize: 32, Symmetric: true}
	np, ns, nz := Int4Sizes(2, 32, p)
	if err := QuantizeInt4With(MethodHQQ, make([]byte, np), make([]float32, ns), make([]byte, nz), src, 2, 32, p); !errors.Is(err, ErrMethod) {
		t.Errorf("hqq symmetric: %v, want ErrMethod", err)
	}
	if err := QuantizeNF4With(MethodHQQ, make([]byte, 32), make([]float32, 1), src, 64); !errors.Is(err, ErrMethod) {
		t.Errorf("hqq nf4: %v, want ErrMethod", err)
	}
	if _, err := ParseMethod("awq2"); !errors.Is(err, ErrMethod) {
		t.Errorf("ParseMethod: %v, want ErrMethod", err)
	}
	if m, err := ParseMethod(""); m != MethodRTN || err != nil {
		t.Errorf(`ParseMethod(""): %q %v`, m, err)
	}
	bad := slices.Clone(src)
	bad[40] = float32(math.NaN())
	for _, m := range []Method{MethodMSE, MethodHQQ} {
		p := Int4Params{BlockSize: 32}
		np, ns, nz := Int4Sizes(2, 32, p)
		var nf *NonFiniteError
		if err := QuantizeInt4With(m, make([]byte, np), make([]float32, ns), make([]byte, nz), bad, 2, 32, p); !errors.As(err, &nf) || nf.Index != 40 {
			t.Errorf("%s NaN: %v, want NonFiniteError at 40", m, err)
		}
	}
	var nf *NonFiniteError
	if err := QuantizeNF4With(MethodMSE, make([]byte, 32), make([]float32, 1), bad, 64); !errors.As(err, &nf) {
		t.Errorf("nf4 mse NaN: %v, want NonFiniteError", err)
	}
}

// refNearestNF4 is the float64 squared error of x with the nearest NF4
// codebook value times a.
func refNearestNF4(x, a float64) float64 {
	best := math.Inf(1)
	for _, c := range pinnedNF4 {
		d := x - c*a
		best = math.Min(best, d*d)
	}
	return best
}

// TestNF4MSEFloat64: the nf4 mse codes are nearest codebook entries for the
// stored absmax (up to the threshold literals, which sit within 2^-24 of the
// float32 midpoints, and float32 rounding of x/absmax: 2^-20·absmax covers
// both), the error is at most round-to-nearest's, and over each matrix
// within tol of an exhaustive float64 search over refScales scales.
func TestNF4MSEFloat64(t *testing.T) {
	for name, c := range methodBlocks(newRand(12)) {
		for _, bs := range []int{16, 64} {
			src := c.v
			np, na := NF4Sizes(len(src), bs)
			packed, absmax := make([]byte, np), make([]float32, na)
			if err := QuantizeNF4With(MethodMSE, packed, absmax, src, bs); err != nil {
				t.Fatal(err)
			}
			deq := make([]float32, len(src))
			if err := DequantizeNF4(deq, packed, absmax, bs); err != nil {
				t.Fatal(err)
			}
			rcodes, rabs := refNF4(src, bs)
			var sumErr, sumRef float64
			for b := range absmax {
				blk := src[b*bs : min((b+1)*bs, len(src))]
				a := float64(absmax[b])
				var e, rtn float64
				for j, x := range blk {
					d := float64(x) - float64(deq[b*bs+j])
					e += d * d
					if near := math.Sqrt(refNearestNF4(float64(x), a)); math.Abs(d) > near+a*0x1p-20+1e-30 {
						t.Fatalf("%s bs %d block %d elem %d: |x-ŵ| %g, nearest %g", name, bs, b, j, math.Abs(d), near)
					}
					r := float64(x) - float64(float32(pinnedNF4[rcodes[b*bs+j]]*float64(rabs[b])))
					rtn += r * r
				}
				if e > rtn {
					t.Fatalf("%s bs %d block %d: error %g > rtn %g", name, bs, b, e, rtn)
				}
				var m float64
				for _, x := range blk {
					m = math.Max(m, math.Abs(float64(x)))
				}
				best := 0.0
				if m > 0 {
					best = math.Inf(1)
					for i := 0; i <= refScales; i++ {
						s := m * (0.2 + float64(i)/refScales)
						var ee float64
						for _, x := range blk {
							ee += refNearestNF4(float64(x), s)
						}
						best = math.Min(best, ee)
					}
				}
				sumErr += e
				sumRef += best
			}
			// Measured worst ratios: 1.056 at block 16, 1.040 at block 64
			// (the all-positive matrix, which uses half the codebook).
			tol := 1.08
			if bs < 64 {
				tol = 1.1
			}
			t.Logf("%s nf4 bs %d: error %.4g = %.3f × exhaustive", name, bs, sumErr, sumErr/sumRef)
			if sumErr > sumRef*tol+1e-30 {
				t.Errorf("%s nf4 bs %d: error %g > %.2f × exhaustive %g", name, bs, sumErr, tol, sumRef)
			}
		}
	}
}
