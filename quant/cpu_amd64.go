//go:build amd64 && !purego

package quant

import "golang.org/x/sys/cpu"

// The AVX2 kernels need AVX2 and POPCNT; the half-precision ones also F16C,
// the error statistics also FMA.
var (
	hasAVX2     = cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT
	hasF16Asm   = hasAVX2 && cpu.X86.HasF16C
	hasStatsAsm = hasAVX2 && cpu.X86.HasFMA
)

// Assembly kernels (kernels_amd64.s). Each handles a whole number of its
// chunk size and leaves the tail to the Go twin; the counts below are in
// elements (pairs for nf4PairsAVX2).

//go:noescape
func f32ToF16AVX2(dst *uint16, src *float32, n int) (overflow int)

//go:noescape
func f16ToF32AVX2(dst *float32, src *uint16, n int)

//go:noescape
func f32ToBF16AVX2(dst *uint16, src *float32, n int) (overflow int)

//go:noescape
func absMaxBitsAVX2(src *float32, n int) uint32

//go:noescape
func quantizeInt8AVX2(dst *int8, src *float32, n int, scale float32)

//go:noescape
func sumPairsAVX2(ref, got *float32, n int, out *[5]float64)

//go:noescape
func dequantNF4AVX2(dst *float32, src *byte, n int, am float32, book *[16]float32)

//go:noescape
func nf4PairsAVX2(dst *byte, src *float32, pairs int, r float32, thr *[15][8]float32)

func f32ToF16Asm(dst []uint16, src []float32) (done, overflow int) {
	n := len(src) &^ 15
	if n == 0 {
		return 0, 0
	}
	return n, f32ToF16AVX2(&dst[0], &src[0], n)
}

func f16ToF32Asm(dst []float32, src []uint16) int {
	n := len(src) &^ 15
	if n > 0 {
		f16ToF32AVX2(&dst[0], &src[0], n)
	}
	return n
}

func f32ToBF16Asm(dst []uint16, src []float32) (done, overflow int) {
	n := len(src) &^ 15
	if n == 0 {
		return 0, 0
	}
	return n, f32ToBF16AVX2(&dst[0], &src[0], n)
}

// absMaxBitsAsm is absMaxBitsGo for len(src) ≥ 32.
func absMaxBitsAsm(src []float32) uint32 {
	n := len(src) &^ 31
	return max(absMaxBitsAVX2(&src[0], n), absMaxBitsGo(src[n:]))
}

func quantizeInt8Asm(dst []int8, src []float32, scale float32) int {
	n := len(src) &^ 31
	if n > 0 {
		dst = dst[:n]
		quantizeInt8AVX2(&dst[0], &src[0], n, scale)
	}
	return n
}

// nf4ThrVec holds each NF4 threshold repeated across a 256-bit vector.
var nf4ThrVec = func() (v [15][8]float32) {
	for i, t := range nf4Thresholds {
		for j := range v[i] {
			v[i][j] = t
		}
	}
	return v
}()

// nf4PairsAsm packs codes for whole groups of 8 pairs; out and blk are
// already cut to pairs and 2·pairs elements.
func nf4PairsAsm(out []byte, blk []float32, r float32) int {
	n := len(out) &^ 7
	if n > 0 {
		blk = blk[:2*n]
		nf4PairsAVX2(&out[0], &blk[0], n, r, &nf4ThrVec)
	}
	return n
}

// sumPairsAsm reduces the first len(ref)&^7 pairs (len(got) == len(ref))
// and returns their sums and that count; the caller adds the rest.
func sumPairsAsm(ref, got []float32) (ErrorAcc, int) {
	n := len(ref) &^ 7
	if n == 0 {
		return ErrorAcc{}, 0
	}
	got = got[:n]
	var out [5]float64
	sumPairsAVX2(&ref[0], &got[0], n, &out)
	return ErrorAcc{n: int64(n), ref2: out[0], err2: out[1], dot: out[2], got2: out[3], maxAbs: out[4]}, n
}

// dequantNF4Asm decodes whole groups of 8 bytes of in into out
// (len(out) == 2·len(in)) and returns how many bytes it did.
func dequantNF4Asm(out []float32, in []byte, am float32) int {
	n := len(in) &^ 7
	if n > 0 {
		out = out[:2*n]
		dequantNF4AVX2(&out[0], &in[0], n, am, &NF4Codebook)
	}
	return n
}
