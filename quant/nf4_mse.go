package quant

import "math"

// quantizeNF4MSE is QuantizeNF4 with each block's absmax chosen by the mse
// search, as for int4 (see int4MSE): for each clipping factor α on the coarse
// grid,
// one pass computes the codes of x/(α·max|x|) (values beyond ±1 take codes
// 0 and 15) and the sums Σx·v, Σv² of their codebook values v, which give
// the squared error of the least-squares scale Σx·v/Σv² for those codes
// without another pass. The best predicted scale is realised (codes
// recomputed for it, refitted once more) and kept only where its exact error
// beats the best so far, RTN included. The layout is QuantizeNF4's: the
// stored "absmax" is simply the block's scale, which is all that
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
		var sx2 float64
		for _, x := range blk {
			sx2 += float64(x) * float64(x)
		}
		predErr, predA := math.Inf(1), float64(0)
		for i := 0; i < coarseGrid.n; i++ {
			a := float32(am * float32(1-coarseGrid.step*float64(i)))
			if !nf4Plain(a) {
				continue
			}
			r := 1 / a
			var xv0, xv1, vv0, vv1 float32
			j := 0
			for ; j+2 <= len(blk); j += 2 {
				v0 := NF4Codebook[nf4Code(min(max(float32(blk[j]*r), -1), 1))]
				v1 := NF4Codebook[nf4Code(min(max(float32(blk[j+1]*r), -1), 1))]
				xv0 += float32(blk[j] * v0)
				xv1 += float32(blk[j+1] * v1)
				vv0 += float32(v0 * v0)
				vv1 += float32(v1 * v1)
			}
			if j < len(blk) {
				v0 := NF4Codebook[nf4Code(min(max(float32(blk[j]*r), -1), 1))]
				xv0 += float32(blk[j] * v0)
				vv0 += float32(v0 * v0)
			}
			xv, vv := float64(xv0)+float64(xv1), float64(vv0)+float64(vv1)
			if vv > 0 && xv > 0 {
				if e := sx2 - xv*xv/vv; e < predErr {
					predErr, predA = e, xv/vv
				}
			}
		}
		best, bestErr := am, nf4Err(blk, out, am)
		t := tmp[:len(out)]
		a, ok := float32(predA), predA > 0
		for it := 0; ok && nf4Plain(a) && it < mseRefits; it++ {
			nf4Clipped(t, blk, 1/a)
			if e := nf4Err(blk, t, a); e < bestErr {
				best, bestErr = a, e
				copy(out, t)
			}
			a, ok = nf4FitScale(blk, t)
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
