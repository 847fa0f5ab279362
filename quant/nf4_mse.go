package quant

import "math"

// quantizeNF4MSE is QuantizeNF4 with each block's absmax chosen by the mse
// search: the stored absmax a = α·max|x| for α on the clipping grid (values
// beyond ±a take codes 0 and 15, i.e. ±a), then the least-squares scale
// Σx·c / Σc² for the chosen codebook values c. The layout is QuantizeNF4's:
// the stored "absmax" is simply the block's scale, which is all that
// DequantizeNF4, bitsandbytes and MatMulBnb4 read. Blocks whose max|x| lies
// outside the range where QuantizeNF4 uses its plain float32 path (below
// 2^-126 or above 2^126) keep the RTN result.
func quantizeNF4MSE(packed []byte, absmax []float32, src []float32, bs int) error {
	if err := QuantizeNF4(packed, absmax, src, bs); err != nil {
		return err
	}
	var tmp [MaxNF4BlockSize / 2]byte
	for b, am := range absmax {
		start := b * bs
		blk := src[start:min(start+bs, len(src))]
		out := packed[start/2 : start/2+(len(blk)+1)/2]
		if !nf4Plain(am) {
			continue
		}
		best, bestErr := am, nf4Err(blk, out, am)
		t := tmp[:len(out)]
		for i := 1; i < mseGrid; i++ {
			a := float32(am * float32(1-mseStep*float64(i)))
			if !nf4Plain(a) {
				continue
			}
			nf4Clipped(t, blk, 1/a)
			if e := nf4Err(blk, t, a); e < bestErr {
				best, bestErr = a, e
				copy(out, t)
			}
		}
		if a, ok := nf4FitScale(blk, out); ok && nf4Plain(a) {
			nf4Clipped(t, blk, 1/a)
			if e := nf4Err(blk, t, a); e < bestErr {
				best = a
				copy(out, t)
			}
		}
		absmax[b] = best
	}
	return nil
}

// nf4Plain reports whether a block scale is in the range where 1/a is a
// normal float32 (see QuantizeNF4).
func nf4Plain(a float32) bool {
	bits := math.Float32bits(a)
	return bits >= minNormalBits && bits <= maxRcpNormalBits
}

// nf4Clipped packs the NF4 codes of x·r (high nibble first, an odd count
// padded with code 7), clipping x·r to [-1, 1] first: beyond it the nearest
// codebook entry is ±1 anyway.
func nf4Clipped(out []byte, blk []float32, r float32) {
	code := func(x float32) uint8 {
		return nf4Code(min(max(float32(x*r), -1), 1))
	}
	n := len(blk) / 2
	for j := 0; j < n; j++ {
		out[j] = code(blk[2*j])<<4 | code(blk[2*j+1])
	}
	if len(blk)%2 == 1 {
		out[n] = code(blk[2*n])<<4 | nf4ZeroCode
	}
}

// nf4Err is Σ(x - ŵ)² with ŵ = NF4Codebook[code]·a as DequantizeNF4
// computes it.
func nf4Err(blk []float32, packed []byte, a float32) float64 {
	var s float64
	for i, x := range blk {
		c := packed[i/2] >> (4 * (1 - i%2)) & 0xF
		e := float64(x) - float64(float32(NF4Codebook[c]*a))
		s += e * e
	}
	return s
}

// nf4FitScale is the least-squares scale Σx·c / Σc² for the block's codebook
// values c.
func nf4FitScale(blk []float32, packed []byte) (float32, bool) {
	var num, den float64
	for i, x := range blk {
		c := float64(NF4Codebook[packed[i/2]>>(4*(1-i%2))&0xF])
		num += float64(x) * c
		den += c * c
	}
	if den == 0 || num <= 0 {
		return 0, false
	}
	return float32(num / den), true
}
