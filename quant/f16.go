package quant

import "math"

// Half-precision (IEEE 754 binary16) conversion. Bit patterns travel as
// uint16 so that callers can write them out without another copy.

const (
	f16Inf     = 0x7C00
	f16Quiet   = 0x0200 // quiet bit of a binary16 NaN
	f32Quiet   = 0x00400000
	f32AbsMask = 0x7FFFFFFF
	f32Inf     = 0x7F800000
	// f16OverflowBits is the smallest |x| (as float32 bits) that rounds to
	// half-precision infinity: 65520, halfway between the largest finite
	// half 65504 and 65536, which ties to the even neighbour, infinity.
	f16OverflowBits = 0x477FF000
	// f16MinNormalBits is 2^-14, the smallest normal half, as float32 bits.
	f16MinNormalBits = 0x38800000
	// f16HalfMinSubBits is 2^-25, half the smallest subnormal half: values of
	// at most this magnitude round to zero (the tie goes to the even 0).
	f16HalfMinSubBits = 0x33000000
)

// F16Bits converts f to the nearest binary16 (round to nearest, ties to even)
// and returns its bit pattern. Values of magnitude 65520 and above become ±Inf;
// NaN becomes a quiet NaN with f's sign and the top 9 bits of its payload.
func F16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	a := b & f32AbsMask
	switch {
	case a > f32Inf: // NaN
		return sign | f16Inf | f16Quiet | uint16(a>>13)&0x3FF
	case a >= f16OverflowBits:
		return sign | f16Inf
	case a >= f16MinNormalBits:
		// Re-bias the exponent from 127 to 15, then round the 23-bit
		// fraction to 10 bits: adding 0xFFF plus the lowest kept bit
		// carries exactly when the dropped 13 bits exceed half, or equal
		// half with an odd kept part. A carry out of the fraction bumps the
		// exponent, which is also right (up to 0x7BFF: the Inf case is above).
		a -= (127 - 15) << 23
		return sign | uint16((a+0xFFF+(a>>13)&1)>>13)
	case a > f16HalfMinSubBits:
		// Subnormal result: the value is m·2^(e-150) with the implicit bit
		// restored; in units of 2^-24 that is m >> (126-e), rounded half to
		// even. A result of 0x400 is the smallest normal, also right.
		e := a >> 23
		m := a&0x7FFFFF | 0x800000
		s := 126 - e
		return sign | uint16((m+(1<<(s-1))-1+(m>>s)&1)>>s)
	default:
		return sign
	}
}

// F16Value returns the float32 value of the binary16 bit pattern h. Every
// half is exactly representable; a NaN comes back quiet with its sign and
// payload.
func F16Value(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1F
	m := uint32(h & 0x3FF)
	switch e {
	case 0:
		// Zero or subnormal: m·2^-24, exact in float32.
		return math.Float32frombits(sign | math.Float32bits(float32(m)*(1.0/(1<<24))))
	case 0x1F:
		if m == 0 {
			return math.Float32frombits(sign | f32Inf)
		}
		return math.Float32frombits(sign | f32Inf | f32Quiet | m<<13)
	}
	return math.Float32frombits(sign | (e+127-15)<<23 | m<<13)
}

// F32ToF16 converts src to binary16 bit patterns in dst[:len(src)] with the
// rounding of F16Bits and returns how many finite inputs overflowed to ±Inf.
// It panics if dst is shorter than src.
func F32ToF16(dst []uint16, src []float32) (overflow int) {
	dst = dst[:len(src)]
	done := 0
	if useAsm && hasF16Asm {
		done, overflow = f32ToF16Asm(dst, src)
	}
	return overflow + f32ToF16Go(dst[done:], src[done:])
}

// F16ToF32 converts the binary16 bit patterns in src to float32 in
// dst[:len(src)]. It panics if dst is shorter than src.
func F16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	done := 0
	if useAsm && hasF16Asm {
		done = f16ToF32Asm(dst, src)
	}
	f16ToF32Go(dst[done:], src[done:])
}

// f32ToF16Go is the portable kernel behind F32ToF16: the normal-to-normal
// case inline (one predictable branch, a few integer operations), everything
// else through F16Bits.
func f32ToF16Go(dst []uint16, src []float32) (overflow int) {
	dst = dst[:len(src)]
	for i, f := range src {
		b := math.Float32bits(f)
		a := b & f32AbsMask
		if a-f16MinNormalBits < f16OverflowBits-f16MinNormalBits {
			a -= (127 - 15) << 23
			dst[i] = uint16(b>>16)&0x8000 | uint16((a+0xFFF+(a>>13)&1)>>13)
			continue
		}
		if a-f16OverflowBits < f32Inf-f16OverflowBits { // finite and ≥ 65520
			overflow++
		}
		dst[i] = F16Bits(f)
	}
	return overflow
}

// f16ToF32Go is the portable kernel behind F16ToF32, with the normal case
// inline.
func f16ToF32Go(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		if e := h & f16Inf; e != 0 && e != f16Inf {
			dst[i] = math.Float32frombits(uint32(h&0x8000)<<16 | (uint32(h&0x7FFF)+(127-15)<<10)<<13)
			continue
		}
		dst[i] = F16Value(h)
	}
}
