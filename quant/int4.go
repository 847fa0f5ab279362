package quant

import (
	"fmt"
	"math"
)

// INT4 blockwise quantization in ONNX Runtime's MatMulNBits layout
// (com.microsoft.MatMulNBits, bits=4), for a weight B of shape [N, K] (a
// Linear weight [out, in] is already [N, K]) quantized in blocks of BlockSize
// consecutive elements along K. kBlocks = ceil(K / BlockSize).
//
//	packed  [N, kBlocks, BlockSize/2] uint8, element k of a block in byte k/2,
//	        even k in the LOW nibble (ONNX's INT4 order)
//	scales  [N·kBlocks] float32
//	zeros   [N, ceil(kBlocks/2)] uint8, block b of a row in byte b/2, even b in
//	        the low nibble; asymmetric only. An odd kBlocks leaves the last high
//	        nibble at 8, MatMulNBits' default zero point, as ORT's quantizer does.
//
// The arithmetic is that of ORT's quantizer (BlockwiseQuantizer in
// onnxruntime/core/mlas/lib/q4_dq.cpp, reached from matmul_4bits_quantizer.py
// through quantize_matmul_4bits), all in float32:
//
//	symmetric:  m = the block's element of largest magnitude, the negative one
//	            on a tie (range2scale: fabsf(max) > fabsf(min) ? max : min);
//	            scale = -m/8; zp = 8
//	asymmetric: lo = min(min, 0), hi = max(max, 0); scale = (hi-lo)/15;
//	            zp = clamp(roundf(0 - lo/scale), 0, 15) (0 when scale is 0)
//	codes:      r = scale != 0 ? 1/scale : 0
//	            q = clamp(roundf(float32(x·r) + zp), 0, 15)
//
// roundf rounds half away from zero; after the zero point is added the value
// is never below -0.5, so that is round-half-up. Note the reciprocal multiply
// and the zero point added before rounding: q is not always round(x/scale)+zp.
// Dequantization (what MatMulNBits computes): ŵ = (q - zp)·scale.
//
// Error bound: |w - ŵ| ≤ |scale|/2 (plus float32 rounding), with one
// exception in the symmetric scheme: m maps to q-8 = -8 exactly, but values
// of the other sign reach +8 only at magnitude |m|, and +8 clamps to 7, so
// values beyond 7.5 steps on that side are off by up to one full step.
//
// Compilers that contract float32(x·r) + zp into one fused multiply-add (GCC
// does on arm64 by default) can make ORT builds for such targets differ from
// this by one code where x·r + zp lands within an ulp of a .5; this follows
// the x86-64 build, which has no FMA to contract to. A scale below 2^-128,
// whose float32 reciprocal overflows, is handled with the exponent range
// extended (see the package comment); ORT would produce garbage there.
//
// When K is not a multiple of BlockSize the last block of each row is padded
// with zeros: block statistics come from the real elements (a zero never
// changes them: the asymmetric range already holds 0, and |0| never wins the
// symmetric comparison), and the padding nibbles hold the code of 0.0, which
// is zp. ORT's quantizer leaves those nibbles at 0 (or, for odd K, repeats a
// neighbour); MatMulNBits never reads them.

// Int4Params selects the INT4 variant.
type Int4Params struct {
	// BlockSize is the number of consecutive K elements sharing a scale: a
	// power of two from 16 to 4096 (MatMulNBits requires a power of two ≥ 16).
	BlockSize int
	// Symmetric selects scale = -m/8 with the implicit zero point 8 and no
	// zero-point tensor; otherwise min/max scales and packed zero points.
	Symmetric bool
	// F16Scales rounds each scale to the nearest half (ties to even) before
	// the codes are computed, so that the scales can be stored as F16
	// (F16Bits(scale) is then exact) and the codes still match them, as ORT's
	// quantizer does for float16 weights. A scale beyond half range is an
	// ErrRange error; one that rounds to zero quantizes its block to zp.
	F16Scales bool
}

// Int4 block size limits.
const (
	MinInt4BlockSize = 16
	MaxInt4BlockSize = 4096
)

// Validate reports whether p describes a supported variant.
func (p Int4Params) Validate() error {
	bs := p.BlockSize
	if bs < MinInt4BlockSize || bs > MaxInt4BlockSize || bs&(bs-1) != 0 {
		return fmt.Errorf("%w: INT4 block size %d (want a power of two from %d to %d)",
			ErrBlockSize, bs, MinInt4BlockSize, MaxInt4BlockSize)
	}
	return nil
}

// Int4Sizes returns the lengths of the packed, scales and zeros slices for an
// [n, k] weight (zeros is 0 when p is symmetric). It returns zeros for invalid
// arguments; QuantizeInt4 reports why.
func Int4Sizes(n, k int, p Int4Params) (packed, scales, zeros int) {
	kb, err := int4Blocks(n, k, p)
	if err != nil {
		return 0, 0, 0
	}
	packed = n * kb * (p.BlockSize / 2)
	scales = n * kb
	if !p.Symmetric {
		zeros = n * ((kb + 1) / 2)
	}
	return packed, scales, zeros
}

// int4Blocks validates the shape and returns kBlocks, making sure every size
// derived from it fits an int.
func int4Blocks(n, k int, p Int4Params) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if _, err := mulDims(n, k); err != nil {
		return 0, err
	}
	kb := (k + p.BlockSize - 1) / p.BlockSize
	if _, err := mulDims(n, kb*p.BlockSize); err != nil {
		return 0, err
	}
	return kb, nil
}

// checkInt4 validates every slice length against the shape.
func checkInt4(packed []byte, scales []float32, zeros []byte, vals int, n, k int, p Int4Params) error {
	if _, err := int4Blocks(n, k, p); err != nil {
		return err
	}
	wp, ws, wz := Int4Sizes(n, k, p)
	switch {
	case vals != n*k:
		return lengthError("values", vals, n*k)
	case len(packed) != wp:
		return lengthError("packed", len(packed), wp)
	case len(scales) != ws:
		return lengthError("scales", len(scales), ws)
	case len(zeros) != wz:
		return lengthError("zeros", len(zeros), wz)
	}
	return nil
}

// QuantizeInt4 quantizes src [n, k] into packed, scales and (asymmetric only)
// zeros, sized as Int4Sizes says. It returns a *NonFiniteError for NaN or ±Inf
// input and ErrRange when a block's parameters do not fit float32 (or half,
// with F16Scales); on any error the outputs are unspecified.
func QuantizeInt4(packed []byte, scales []float32, zeros []byte, src []float32, n, k int, p Int4Params) error {
	if err := checkInt4(packed, scales, zeros, len(src), n, k, p); err != nil {
		return err
	}
	bs := p.BlockSize
	kb := (k + bs - 1) / bs
	var codes [MaxInt4BlockSize]uint8
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
			storeInt4Block(packed, scales, zeros, c, len(blk), r, b, kb, int4Block{scale, zp}, p)
		}
	}
	return nil
}

// storeInt4Block writes block b of row r (kb blocks a row) in MatMulNBits'
// layout: codes c (its first n computed, the rest padded with the zero
// point), the scale, and, when asymmetric, the packed zero point. It is the
// one writer of the layout for QuantizeInt4 and the searching methods.
func storeInt4Block(packed []byte, scales []float32, zeros []byte, c []uint8, n, r, b, kb int, blk int4Block, p Int4Params) {
	bs := p.BlockSize
	for i := n; i < bs; i++ {
		c[i] = uint8(blk.zp)
	}
	i := r*kb + b
	scales[i] = blk.scale
	PackNibblesLowFirst(packed[i*bs/2:(i+1)*bs/2], c)
	if !p.Symmetric {
		zb := &zeros[r*((kb+1)/2)+b/2]
		if b%2 == 0 {
			*zb = uint8(blk.zp) | 8<<4 // high nibble: next block, or padding
		} else {
			*zb = *zb&0x0F | uint8(blk.zp)<<4
		}
	}
}

// int4MinMax returns the block's min and max as ORT's scan finds them. ORT
// starts from ±FLT_MAX and replaces only on a strictly smaller or larger
// value, so among equal values the first one seen is kept; that matters only
// for the sign of zero in an all-zero block, which decides the sign of a
// symmetric zero scale, and is restored here. A NaN or ±Inf comes back as lo
// or hi outside the finite range, which the caller checks.
func int4MinMax(blk []float32) (lo, hi float32) {
	// Compare order-preserving integer keys in four independent lanes: a
	// float min/max chain costs several cycles of latency per element.
	k := sortKey(blk[0])
	l0, l1, l2, l3, h0, h1, h2, h3 := k, k, k, k, k, k, k, k
	i := 0
	for ; i+4 <= len(blk); i += 4 {
		b := blk[i : i+4 : i+4]
		k0, k1, k2, k3 := sortKey(b[0]), sortKey(b[1]), sortKey(b[2]), sortKey(b[3])
		l0, h0 = min(l0, k0), max(h0, k0)
		l1, h1 = min(l1, k1), max(h1, k1)
		l2, h2 = min(l2, k2), max(h2, k2)
		l3, h3 = min(l3, k3), max(h3, k3)
	}
	for ; i < len(blk); i++ {
		k := sortKey(blk[i])
		l0, h0 = min(l0, k), max(h0, k)
	}
	lo, hi = fromSortKey(min(l0, l1, l2, l3)), fromSortKey(max(h0, h1, h2, h3))
	if lo == 0 && hi == 0 {
		return blk[0], blk[0]
	}
	return lo, hi
}

// sortKey maps a float32 to an int32 whose order is the float order (with
// -0 < +0, and NaNs beyond ±Inf, which the caller rejects).
func sortKey(x float32) int32 {
	k := int32(math.Float32bits(x))
	return k ^ (k>>31)&0x7FFFFFFF
}

// fromSortKey inverts sortKey (the map is its own inverse).
func fromSortKey(k int32) float32 {
	return math.Float32frombits(uint32(k ^ (k>>31)&0x7FFFFFFF))
}

// int4Params computes a block's scale and zero point from its min and max.
func int4Params(lo, hi float32, p Int4Params) (scale float32, zp int32, err error) {
	if p.Symmetric {
		m := lo
		if abs32(hi) > abs32(lo) {
			m = hi
		}
		scale = -m / 8
		zp = 8
	} else {
		lo = min(lo, 0)
		hi = max(hi, 0)
		scale = (hi - lo) / 15
		if scale > math.MaxFloat32 {
			return 0, 0, fmt.Errorf("%w: INT4 block range [%g, %g] overflows float32", ErrRange, lo, hi)
		}
		zf := lo
		if scale != 0 {
			zf = 0 - lo/scale
		}
		switch {
		case zf < 0:
			zp = 0
		case zf > 15:
			zp = 15
		default:
			zp = int32(math.Round(float64(zf)))
		}
	}
	if p.F16Scales {
		scale = F16Value(F16Bits(scale))
		if abs32(scale) > math.MaxFloat32 {
			return 0, 0, fmt.Errorf("%w: INT4 scale overflows float16", ErrRange)
		}
	}
	return scale, zp, nil
}

// int4Codes writes clamp(roundf(float32(x·r) + zp), 0, 15) for each x.
func int4Codes(dst []uint8, blk []float32, scale float32, zp int32) {
	dst = dst[:len(blk)]
	zf := float32(zp)
	if scale == 0 {
		for i := range dst {
			dst[i] = uint8(zp)
		}
		return
	}
	r := 1 / scale
	if abs32(r) > math.MaxFloat32 {
		// 1/scale overflows (|scale| < 2^-128): the same float32 formula
		// with the block and the scale multiplied by 2^64, which is exact.
		r = 1 / (scale * pow64)
		for i, x := range blk {
			dst[i] = roundClamp15(float32(float32(x*pow64)*r) + zf)
		}
		return
	}
	for i, x := range blk {
		dst[i] = roundClamp15(float32(x*r) + zf)
	}
}

// roundClamp15 is clamp(roundf(t), 0, 15) for t ≥ -1: adding 0.5 in float64
// is exact here and truncation is then floor for t+0.5 ≥ 0, while anything
// below rounds to a non-positive integer, clamped to 0 either way.
func roundClamp15(t float32) uint8 {
	q := int32(float64(t) + 0.5)
	return uint8(min(max(q, 0), 15))
}

// DequantizeInt4 writes ŵ = float32(q - zp)·scale for every element of the
// [n, k] weight held in packed, scales and zeros (laid out as QuantizeInt4
// writes them) into dst. Codes and zero points are read as stored, so any
// byte values are accepted.
func DequantizeInt4(dst []float32, packed []byte, scales []float32, zeros []byte, n, k int, p Int4Params) error {
	if err := checkInt4(packed, scales, zeros, len(dst), n, k, p); err != nil {
		return err
	}
	bs := p.BlockSize
	kb := (k + bs - 1) / bs
	for r := 0; r < n; r++ {
		row := dst[r*k : (r+1)*k]
		for b := 0; b < kb; b++ {
			out := row[b*bs : min((b+1)*bs, k)]
			i := r*kb + b
			s := scales[i]
			zp := float32(8)
			if !p.Symmetric {
				zb := zeros[r*((kb+1)/2)+b/2]
				if b%2 == 1 {
					zb >>= 4
				}
				zp = float32(zb & 0xF)
			}
			src := packed[i*bs/2 : (i+1)*bs/2]
			for j := range out {
				c := src[j/2] >> (4 * (j % 2)) & 0xF
				out[j] = (float32(c) - zp) * s
			}
		}
	}
	return nil
}

func abs32(x float32) float32 {
	return math.Float32frombits(math.Float32bits(x) &^ (1 << 31))
}
