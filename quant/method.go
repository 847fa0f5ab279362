package quant

import (
	"fmt"
	"math"

	"github.com/quantpack/quantpack/internal/fault"
)

// Error-minimising 4-bit methods. Every method writes its codes in the
// layout of QuantizeInt4 or QuantizeNF4, so DequantizeInt4, DequantizeNF4,
// ORT's MatMulNBits and MatMulBnb4 and bitsandbytes read them unchanged:
// only the choice of each block's scale (and zero point) differs.
//
//	rtn  round to nearest with the min/max (absmax) scale: QuantizeInt4,
//	     QuantizeNF4, bit-identical to ORT's and bitsandbytes' quantizers.
//	mse  per block, a grid search over a clipping factor α of the RTN range
//	     (α = 1, 1-δ, …), each candidate scored with the least-squares scale
//	     for its codes, the best realised and refitted (see int4MSE and
//	     quantizeNF4MSE). int4 symmetric or asymmetric, nf4.
//	hqq  half-quadratic optimisation (Badri & Shaji, "Half-Quadratic
//	     Quantization of Large Machine Learning Models", 2023) of the scale and
//	     zero point of asymmetric int4 (see hqq.go).
//
// Squared errors are measured on the dequantized values exactly as the
// dequantizers compute them, accumulated in float64 in element order; every
// product that feeds a code is written float32(x*y) so no build fuses it
// into an FMA. The output is a pure function of the input: no randomness,
// and blocks are independent, so any split of the rows across goroutines
// gives the same bytes.
//
// No method is worse than rtn on any block in squared error: the RTN
// parameters are always among the candidates and a candidate replaces the
// best only when its error is strictly lower.

// Method names a 4-bit quantization method.
type Method string

// The 4-bit methods.
const (
	MethodRTN Method = "rtn"
	MethodMSE Method = "mse"
	MethodHQQ Method = "hqq"
	// MethodAWQ scales the input channels of a Linear from calibration
	// statistics before a base method quantizes it (awq.go). It is not a
	// block method: QuantizeInt4With and QuantizeNF4With refuse it, and the
	// caller (convert) folds the scales and quantizes with the base.
	MethodAWQ Method = "awq"
)

// Methods lists the methods in the order help text shows them.
var Methods = []Method{MethodRTN, MethodMSE, MethodHQQ, MethodAWQ}

// ErrMethod: a method name quant does not know, or a method that does not
// apply to the scheme (hqq on symmetric int4 or nf4). fault.Usage: it comes
// from --method.
var ErrMethod = fault.New(fault.Usage, "quant: method not applicable")

// ParseMethod validates a method name; "" is rtn.
func ParseMethod(s string) (Method, error) {
	if s == "" {
		return MethodRTN, nil
	}
	for _, m := range Methods {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w: unknown method %q (want rtn, mse, hqq or awq)", ErrMethod, s)
}

// grid is a clipping grid: α = 1, 1-step, …, 1-(n-1)·step. Gaussian blocks
// of 32–128 find their optimum between about 0.7 and 0.95; the low end
// leaves room for heavy-tailed blocks whose absmax is one outlier. Because
// every candidate is scored with its least-squares scale, the grid can be
// coarse: on Gaussian weights 16 steps of 0.03 gain 0.01 dB over mseGrid (8
// of 0.06, down to 0.58), and coarseGrid (5 of 0.09, down to 0.64; it
// starts hqq and serves nf4, whose code pass is dearer) loses 0.02 dB.
type grid struct {
	n    int
	step float64
}

var (
	mseGrid    = grid{8, 0.06}
	coarseGrid = grid{5, 0.09}
)

const (
	// mseRefits: realise-and-refit rounds of the chosen candidate.
	mseRefits = 2
)

// QuantizeInt4With quantizes like QuantizeInt4 with the given method (rtn,
// mse, or hqq, which needs an asymmetric p). The outputs have the same sizes
// and layout as QuantizeInt4's.
func QuantizeInt4With(m Method, packed []byte, scales []float32, zeros []byte, src []float32, n, k int, p Int4Params) error {
	switch m {
	case MethodRTN, "":
		return QuantizeInt4(packed, scales, zeros, src, n, k, p)
	case MethodMSE:
		return quantizeInt4Search(packed, scales, zeros, src, n, k, p, int4MSEBlock)
	case MethodHQQ:
		if p.Symmetric {
			return fmt.Errorf("%w: hqq optimises a zero point: it needs asymmetric int4", ErrMethod)
		}
		return quantizeInt4Search(packed, scales, zeros, src, n, k, p, int4HQQBlock)
	case MethodAWQ:
		return fmt.Errorf("%w: awq scales input channels before a base method quantizes; quantize with the base", ErrMethod)
	}
	return fmt.Errorf("%w: %q for int4", ErrMethod, m)
}

// QuantizeNF4With quantizes like QuantizeNF4 with the given method (rtn or
// mse; NF4 has no zero point for hqq to optimise).
func QuantizeNF4With(m Method, packed []byte, absmax []float32, src []float32, blockSize int) error {
	switch m {
	case MethodRTN, "":
		return QuantizeNF4(packed, absmax, src, blockSize)
	case MethodMSE:
		return quantizeNF4MSE(packed, absmax, src, blockSize)
	}
	return fmt.Errorf("%w: %q for nf4 (nf4 takes rtn or mse)", ErrMethod, m)
}

// int4Block is a block's quantization: scale, zero point and codes.
type int4Block struct {
	scale float32
	zp    int32
}

// int4Search chooses a block's parameters starting from the RTN ones (rtn,
// with error rtnErr) and leaves the chosen codes in codes. tmp is scratch of
// len(blk).
type int4Search func(blk []float32, lo, hi float32, rtn int4Block, rtnErr float64, codes, tmp []uint8, p Int4Params) int4Block

// quantizeInt4Search is QuantizeInt4 with the block parameters chosen by
// search.
func quantizeInt4Search(packed []byte, scales []float32, zeros []byte, src []float32, n, k int, p Int4Params, search int4Search) error {
	if err := checkInt4(packed, scales, zeros, len(src), n, k, p); err != nil {
		return err
	}
	bs := p.BlockSize
	kb := (k + bs - 1) / bs
	var codes, tmp [MaxInt4BlockSize]uint8
	for r := 0; r < n; r++ {
		row := src[r*k : (r+1)*k]
		for b := 0; b < kb; b++ {
			blk := row[b*bs : min((b+1)*bs, k)]
			lo, hi := int4MinMax(blk)
			if !(lo >= -math.MaxFloat32 && hi <= math.MaxFloat32) {
				return nonFinite(blk, r*k+b*bs)
			}
			scale, zp, err := int4Params(lo, hi, p)
			if err != nil {
				return fmt.Errorf("%w (row %d, block %d)", err, r, b)
			}
			c := codes[:bs]
			int4Codes(c[:len(blk)], blk, scale, zp)
			rtn := int4Block{scale, zp}
			best := search(blk, lo, hi, rtn, int4Err(blk, c[:len(blk)], rtn), c[:len(blk)], tmp[:len(blk)], p)
			storeInt4Block(packed, scales, zeros, c, len(blk), r, b, kb, best, p)
		}
	}
	return nil
}

// int4Err is Σ(x - ŵ)² with ŵ = (q - zp)·scale computed as DequantizeInt4
// does.
func int4Err(blk []float32, codes []uint8, b int4Block) float64 {
	codes = codes[:len(blk)]
	zf := float32(b.zp)
	var s float64
	for i, x := range blk {
		e := float64(x) - float64(float32((float32(codes[i])-zf)*b.scale))
		s += e * e
	}
	return s
}

// candErr is int4Err of the codes int4Codes would give cand, computed in
// one pass without storing them (the search evaluates many candidates and
// keeps one). cand.scale must be nonzero with a finite reciprocal.
func candErr(blk []float32, cand int4Block) float64 {
	zf := float32(cand.zp)
	r := 1 / cand.scale
	var s float64
	for _, x := range blk {
		q := roundClamp15(float32(x*r) + zf)
		e := float64(x) - float64(float32((float32(q)-zf)*cand.scale))
		s += e * e
	}
	return s
}

// try evaluates cand and, when it beats *bestErr, makes it the best with its
// codes in codes. Scales whose reciprocal overflows (|scale| < 2^-128) take
// the slower exact path of int4Codes.
func try(blk []float32, cand int4Block, best *int4Block, bestErr *float64, codes, tmp []uint8) {
	var e float64
	fast := abs32(1/cand.scale) <= math.MaxFloat32
	if fast {
		e = candErr(blk, cand)
	} else {
		int4Codes(tmp, blk, cand.scale, cand.zp)
		e = int4Err(blk, tmp, cand)
	}
	if e < *bestErr {
		*best, *bestErr = cand, e
		if fast {
			int4Codes(codes, blk, cand.scale, cand.zp)
		} else {
			copy(codes, tmp)
		}
	}
}

// fitScale is the least-squares scale for fixed codes and zero point,
// Σx·(q-zp) / Σ(q-zp)², rounded as p stores scales; ok is false when the
// codes are all at the zero point or the scale is not representable.
func fitScale(blk []float32, codes []uint8, zp int32, p Int4Params) (float32, bool) {
	var num, den float64
	for i, x := range blk {
		d := float64(int32(codes[i]) - zp)
		num += float64(x) * d
		den += d * d
	}
	if den == 0 {
		return 0, false
	}
	return storeScale(num/den, p)
}

// storeScale rounds a scale to float32 (and to half with F16Scales) and
// reports whether it is finite and nonzero.
func storeScale(s float64, p Int4Params) (float32, bool) {
	f := float32(s)
	if p.F16Scales {
		f = F16Value(F16Bits(f))
	}
	if f == 0 || abs32(f) > math.MaxFloat32 || f != f {
		return 0, false
	}
	return f, true
}

// int4MSEBlock is the mse search: clipping grid, then a least-squares refit.
func int4MSEBlock(blk []float32, lo, hi float32, rtn int4Block, rtnErr float64, codes, tmp []uint8, p Int4Params) int4Block {
	best, _ := int4MSE(blk, lo, hi, rtn, rtnErr, codes, tmp, p, mseGrid)
	return best
}

// int4MSE returns the mse search's choice and its squared error. Each
// grid candidate (α·range → scale, zero point) costs one pass over the block
// that computes its codes q and the sums Σq, Σq², Σx·q; from those the
// squared error of the least-squares scale for those codes, Σx² - (Σx·d)²/Σd²
// with d = q - zp, is known without another pass. For asymmetric blocks the
// zero point of the two-parameter least-squares fit (rounded to 0..15) is a
// second zero point per candidate. The best predicted (scale, zero point) is
// then realised: codes recomputed for its float32 scale (nearest codes only
// lower the error further), the scale refitted to them once more, and each
// step kept only when its exact error beats the best so far (RTN included).
func int4MSE(blk []float32, lo, hi float32, rtn int4Block, rtnErr float64, codes, tmp []uint8, p Int4Params, g grid) (int4Block, float64) {
	best, bestErr := rtn, rtnErr
	if rtn.scale == 0 {
		return best, bestErr // an all-zero block is exact
	}
	n := float64(len(blk))
	var sx, sx2 float64
	for _, x := range blk {
		sx += float64(x)
		sx2 += float64(x) * float64(x)
	}
	predErr := math.Inf(1)
	var predS float64
	var predZ int32
	consider := func(sq, sq2, sxq float64, z int32) {
		zf := float64(z)
		d2 := sq2 - 2*zf*sq + n*zf*zf
		xd := sxq - zf*sx
		if d2 <= 0 {
			return
		}
		if e := sx2 - xd*xd/d2; e < predErr {
			predErr, predS, predZ = e, xd/d2, z
		}
	}
	for i := 0; i < g.n; i++ {
		a := float32(1 - g.step*float64(i))
		s, zp, err := int4Params(float32(lo*a), float32(hi*a), p)
		if err != nil || s == 0 || abs32(1/s) > math.MaxFloat32 {
			continue
		}
		r, zf := 1/s, float32(zp)
		// Σq and Σq² are integers below 4096·15² < 2^31: exact in int32.
		// Σx·q is summed in float32 over two lanes (fast, and only used to
		// rank candidates; the winner's error is then computed exactly).
		var iq, iq2 int32
		var xq0, xq1 float32
		j := 0
		for ; j+2 <= len(blk); j += 2 {
			q0 := int32(roundClamp15(float32(blk[j]*r) + zf))
			q1 := int32(roundClamp15(float32(blk[j+1]*r) + zf))
			iq += q0 + q1
			iq2 += q0*q0 + q1*q1
			xq0 += float32(blk[j] * float32(q0))
			xq1 += float32(blk[j+1] * float32(q1))
		}
		if j < len(blk) {
			q0 := int32(roundClamp15(float32(blk[j]*r) + zf))
			iq += q0
			iq2 += q0 * q0
			xq0 += float32(blk[j] * float32(q0))
		}
		sq, sq2, sxq := float64(iq), float64(iq2), float64(xq0)+float64(xq1)
		consider(sq, sq2, sxq, zp)
		if p.Symmetric {
			continue
		}
		if den := n*sq2 - sq*sq; den > 0 {
			sl := (n*sxq - sq*sx) / den
			if sl > 0 {
				zr := int32(min(max(math.Round((sl*sq-sx)/(n*sl)), 0), 15))
				if zr != zp {
					consider(sq, sq2, sxq, zr)
				}
			}
		}
	}
	if math.IsInf(predErr, 1) {
		return best, bestErr
	}
	sc, ok := storeScale(predS, p)
	for it := 0; ok && it < mseRefits; it++ {
		cand := int4Block{sc, predZ}
		try(blk, cand, &best, &bestErr, codes, tmp)
		int4Codes(tmp, blk, cand.scale, cand.zp)
		sc, ok = fitScale(blk, tmp, predZ, p)
	}
	return best, bestErr
}
