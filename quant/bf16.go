package quant

import "math"

// bfloat16 is the upper half of a binary32: same exponent range, 7 fraction
// bits. Conversion to it rounds to nearest, ties to even.

const (
	bf16Inf   = 0x7F80
	bf16Quiet = 0x0040
)

// BF16Bits converts f to the nearest bfloat16 (ties to even) and returns its
// bit pattern. Finite values of magnitude at least 0x7F7F8000 (as bits)
// round to ±Inf; NaN becomes a quiet NaN with f's sign and the top 6 bits of
// its payload.
func BF16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	if b&f32AbsMask > f32Inf {
		return uint16(b>>16) | bf16Quiet
	}
	// Adding 0x7FFF plus the lowest kept bit carries into bit 16 exactly when
	// the dropped half exceeds 0x8000, or equals it with an odd kept part.
	return uint16((b + 0x7FFF + (b>>16)&1) >> 16)
}

// BF16Value returns the float32 value of the bfloat16 bit pattern h (exact);
// a NaN comes back quiet with its sign and payload.
func BF16Value(h uint16) float32 {
	b := uint32(h) << 16
	if b&f32AbsMask > f32Inf {
		b |= f32Quiet
	}
	return math.Float32frombits(b)
}

// F32ToBF16 converts src to bfloat16 bit patterns in dst[:len(src)] with the
// rounding of BF16Bits and returns how many finite inputs overflowed to ±Inf.
// It panics if dst is shorter than src.
func F32ToBF16(dst []uint16, src []float32) (overflow int) {
	dst = dst[:len(src)]
	done := 0
	if useAsm && hasAVX2 {
		done, overflow = f32ToBF16Asm(dst, src)
	}
	return overflow + f32ToBF16Go(dst[done:], src[done:])
}

// BF16ToF32 converts the bfloat16 bit patterns in src to float32 in
// dst[:len(src)]. It panics if dst is shorter than src.
func BF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = BF16Value(h)
	}
}

// f32ToBF16Go is the portable kernel behind F32ToBF16.
func f32ToBF16Go(dst []uint16, src []float32) (overflow int) {
	dst = dst[:len(src)]
	for i, f := range src {
		b := math.Float32bits(f)
		a := b & f32AbsMask
		var h uint16
		if a > f32Inf {
			h = uint16(b>>16) | bf16Quiet
		} else {
			h = uint16((b + 0x7FFF + (b>>16)&1) >> 16)
			// Finite in, infinite out.
			if a < f32Inf && h&0x7FFF == bf16Inf {
				overflow++
			}
		}
		dst[i] = h
	}
	return overflow
}
