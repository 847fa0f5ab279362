package quant

import "math"

// INT8 rowwise absmax quantization (bitsandbytes LLM.int8, the "default"
// PyTorch kernel of int8_vectorwise_quant and int8_vectorwise_dequant in
// bitsandbytes/backends/default/ops.py), for a weight [rows, cols] in
// row-major order:
//
//	SCB[r] = max |w[r, :]|                       (float32)
//	scale  = float32(127 / SCB[r])               (one float32 division)
//	q      = round_half_even(float32(w * scale)) (torch.round; |q| ≤ 127)
//	ŵ      = float32(float32(q * SCB[r]) * float32(1/127))
//
// A row of zeros gets SCB 0 and q 0 (bitsandbytes would divide by zero there).
// For SCB above MaxFloat32/127 the float32 product q·SCB can overflow, and
// those rows are dequantized in float64 instead (one rounding to float32).

const (
	// magicRound is 1.5·2^23: adding it to a float32 v with |v| < 2^22 rounds
	// v to an integer, half to even (the ulp at that magnitude is 1), and the
	// integer can be read from the low mantissa bits.
	magicRound     = 12582912
	magicRoundBits = 0x4B400000
	// inv127 is float32(1/127), the constant bitsandbytes multiplies by when
	// it dequantizes (7.874015718698502e-3).
	inv127 = float32(1.0 / 127)
	// pow64 and invPow64 rescale a block exactly when its reciprocal scale
	// would overflow float32 (see the package comment).
	pow64    = float32(1 << 64)
	invPow64 = float32(1.0 / (1 << 64))
)

// QuantizeInt8Rows quantizes src [rows, cols] into q (same length) and the
// row scales scb (length rows). It returns a *NonFiniteError for NaN or ±Inf
// input; on any error the contents of q and scb are unspecified.
func QuantizeInt8Rows(q []int8, scb []float32, src []float32, rows, cols int) error {
	n, err := mulDims(rows, cols)
	if err != nil {
		return err
	}
	switch {
	case len(src) != n:
		return lengthError("src", len(src), n)
	case len(q) != n:
		return lengthError("q", len(q), n)
	case len(scb) != rows:
		return lengthError("scb", len(scb), rows)
	}
	for r := 0; r < rows; r++ {
		row := src[r*cols : (r+1)*cols]
		out := q[r*cols : (r+1)*cols]
		bits := absMaxBits(row)
		if bits > f32Inf || bits == f32Inf {
			return nonFinite(row, r*cols)
		}
		absmax := math.Float32frombits(bits)
		scb[r] = absmax
		if absmax == 0 {
			clear(out)
			continue
		}
		scale := 127 / absmax
		if scale > math.MaxFloat32 {
			// 127/SCB overflows: evaluate the same float32 formula with
			// the row scaled by 2^64, which is exact.
			scale = 127 / (absmax * pow64)
			quantizeInt8Scaled(out, row, scale)
			continue
		}
		quantizeInt8Row(out, row, scale)
	}
	return nil
}

// DequantizeInt8Rows writes ŵ = float32(float32(q·SCB)·float32(1/127)) for
// the [rows, cols] codes q into dst (in float64 for rows whose SCB exceeds
// MaxFloat32/127, where q·SCB could overflow).
func DequantizeInt8Rows(dst []float32, q []int8, scb []float32, rows, cols int) error {
	n, err := mulDims(rows, cols)
	if err != nil {
		return err
	}
	switch {
	case len(dst) != n:
		return lengthError("dst", len(dst), n)
	case len(q) != n:
		return lengthError("q", len(q), n)
	case len(scb) != rows:
		return lengthError("scb", len(scb), rows)
	}
	for r := 0; r < rows; r++ {
		s := scb[r]
		out := dst[r*cols : (r+1)*cols]
		in := q[r*cols : (r+1)*cols]
		in = in[:len(out)]
		if s > math.MaxFloat32/127 {
			// q·SCB could overflow float32 (bitsandbytes would return
			// ±Inf): take the product in float64 and round once.
			for i, v := range in {
				out[i] = float32(float64(v) * float64(s) * float64(inv127))
			}
			continue
		}
		for i, v := range in {
			out[i] = float32(float32(v)*s) * inv127
		}
	}
	return nil
}

// absMaxBits returns the largest |x| in src as float32 bits. Comparing the
// bits of |x| as integers orders finite values and infinities correctly and
// puts every NaN above +Inf, so a result ≥ f32Inf means non-finite input.
func absMaxBits(src []float32) uint32 {
	if useAsm && hasAVX2 && len(src) >= 32 {
		return absMaxBitsAsm(src)
	}
	return absMaxBitsGo(src)
}

func absMaxBitsGo(src []float32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(src); i += 4 {
		s := src[i : i+4 : i+4]
		m0 = max(m0, math.Float32bits(s[0])&f32AbsMask)
		m1 = max(m1, math.Float32bits(s[1])&f32AbsMask)
		m2 = max(m2, math.Float32bits(s[2])&f32AbsMask)
		m3 = max(m3, math.Float32bits(s[3])&f32AbsMask)
	}
	for ; i < len(src); i++ {
		m0 = max(m0, math.Float32bits(src[i])&f32AbsMask)
	}
	return max(m0, m1, m2, m3)
}

// nonFinite returns the error for the first NaN or ±Inf in src, whose first
// element has index base in the caller's slice.
func nonFinite(src []float32, base int) error {
	for i, v := range src {
		if math.Float32bits(v)&f32AbsMask >= f32Inf {
			return &NonFiniteError{Index: base + i, Value: v}
		}
	}
	return &NonFiniteError{Index: base}
}

// quantizeInt8Row writes RNE(float32(x·scale)) for a row whose |x·scale| ≤
// 127.5 (scale = 127/SCB rounded, so x·scale rounds to at most 127.00002).
func quantizeInt8Row(dst []int8, src []float32, scale float32) {
	if useAsm && hasAVX2 {
		done := quantizeInt8Asm(dst, src, scale)
		dst, src = dst[done:], src[done:]
	}
	quantizeInt8RowGo(dst, src, scale)
}

func quantizeInt8RowGo(dst []int8, src []float32, scale float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		t := float32(x*scale) + magicRound
		dst[i] = int8(int32(math.Float32bits(t)) - magicRoundBits)
	}
}

// quantizeInt8Scaled is quantizeInt8Row for a row scaled by 2^64 first.
func quantizeInt8Scaled(dst []int8, src []float32, scale float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		t := float32(float32(x*pow64)*scale) + magicRound
		dst[i] = int8(int32(math.Float32bits(t)) - magicRoundBits)
	}
}
