package quant

import (
	"fmt"
	"math"
)

// NF4 (bitsandbytes quantize_4bit with quant_type "nf4"). The weight is
// flattened row-major and cut into blocks of blockSize elements (64 in
// practice), the last one possibly short. Per block, all in float32, as the
// CUDA kernel kQuantizeBlockwise does:
//
//	absmax = max |x|
//	r      = 1/absmax
//	code   = dQuantizeNF4(float32(x·r))
//	ŵ      = NF4Codebook[code]·absmax
//
// dQuantizeNF4 is a decision tree over 15 float32 thresholds that tests
// x > t at every node, so the code is the number of thresholds strictly below
// x and a value exactly on a threshold takes the lower code. The thresholds
// are the midpoints of neighbouring codebook entries written as decimal
// literals with an f suffix, i.e. each decimal rounded straight to float32.
// The exact midpoint of two float32 entries usually lies halfway between two
// float32 values, and for four thresholds the literal lands on the other
// neighbour than the float32 midpoint (a+b)·0.5 would: nf4Thresholds holds the
// literals' values, not recomputed midpoints.
// Codes are packed two to a byte, element 2j in the HIGH nibble and 2j+1 in
// the low one; an odd count is padded with the code of 0.0 (7), which is what
// the kernel produces for the zero it loads past the end.
//
// One deliberate difference: a block of zeros gets code 7 (the code of 0.0)
// throughout, so it dequantizes to exact zeros whatever its stored absmax.
// bitsandbytes computes 0·(1/0) = NaN there, which the tree sends to code 0
// (-1.0); with double quantization that block would come back as -absmax'
// instead of zero.

// NF4Codebook holds the 16 NF4 values in code order (bitsandbytes
// functional.py get_4bit_type("nf4"); docs/design.md).
var NF4Codebook = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// nf4Thresholds are the float32 constants of bitsandbytes' dQuantizeNF4 in
// ascending order (threshold i separates code i from code i+1).
var nf4Thresholds = [15]float32{
	-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
	-0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
	0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
	0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
}

// nf4ZeroCode is the code of 0.0, used for padding and all-zero blocks.
const nf4ZeroCode = 7

// NF4 block size limits (bitsandbytes uses 64; the kernel takes 64 to 4096).
const (
	MinNF4BlockSize = 2
	MaxNF4BlockSize = 4096
)

func checkNF4Block(bs int) error {
	if bs < MinNF4BlockSize || bs > MaxNF4BlockSize || bs%2 != 0 {
		return fmt.Errorf("%w: NF4 block size %d (want an even number from %d to %d)",
			ErrBlockSize, bs, MinNF4BlockSize, MaxNF4BlockSize)
	}
	return nil
}

// NF4Sizes returns the lengths of the packed and absmax slices for n elements.
func NF4Sizes(n, blockSize int) (packed, absmax int) {
	if n < 0 || blockSize <= 0 {
		return 0, 0
	}
	return n/2 + n%2, n/blockSize + min(n%blockSize, 1)
}

// QuantizeNF4 quantizes src (a flattened weight) into packed
// (len (len(src)+1)/2) and one absmax per block of blockSize elements. It
// returns a *NonFiniteError for NaN or ±Inf input; on any error the outputs
// are unspecified.
func QuantizeNF4(packed []byte, absmax []float32, src []float32, blockSize int) error {
	if err := checkNF4Block(blockSize); err != nil {
		return err
	}
	wp, wa := NF4Sizes(len(src), blockSize)
	switch {
	case len(packed) != wp:
		return lengthError("packed", len(packed), wp)
	case len(absmax) != wa:
		return lengthError("absmax", len(absmax), wa)
	}
	for b := range absmax {
		start := b * blockSize
		blk := src[start:min(start+blockSize, len(src))]
		out := packed[start/2 : start/2+(len(blk)+1)/2]
		bits := absMaxBits(blk)
		if bits >= f32Inf {
			return nonFinite(blk, start)
		}
		am := math.Float32frombits(bits)
		absmax[b] = am
		switch {
		case am == 0:
			for i := range out {
				out[i] = nf4ZeroCode<<4 | nf4ZeroCode
			}
		case bits < minNormalBits || bits > maxRcpNormalBits:
			nf4BlockScaled(out, blk, am)
		default:
			nf4Block(out, blk, 1/am)
		}
	}
	return nil
}

const (
	// minNormalBits is 2^-126 as float32 bits; maxRcpNormalBits is 2^126:
	// for an absmax between the two, 1/absmax is a normal float32, and the
	// kernel's float32 arithmetic needs no help.
	minNormalBits    = 0x00800000
	maxRcpNormalBits = 0x7E800000
)

// nf4BlockScaled handles an absmax outside [2^-126, 2^126]: the block is
// multiplied by the power of two that brings absmax into [1, 2), then
// quantized as usual. That is the kernel's float32 formula with an unbounded
// exponent range: only elements whose normalized value is below 2^-126 can
// round when scaled down, and those are code 7 either way.
func nf4BlockScaled(out []byte, blk []float32, am float32) {
	_, e := math.Frexp(float64(am)) // am = f·2^e with f in [0.5, 1)
	s := math.Ldexp(1, 1-e)         // am·s in [1, 2); s may exceed float32
	var tmp [MaxNF4BlockSize]float32
	t := tmp[:len(blk)]
	for i, x := range blk {
		t[i] = float32(float64(x) * s) // exact product, rounded once
	}
	nf4Block(out, t, 1/float32(float64(am)*s))
}

// nf4Block writes the packed codes of blk, normalized by r, into out.
func nf4Block(out []byte, blk []float32, r float32) {
	n := len(blk) / 2
	if useAsm && hasAVX2 && n >= 8 {
		done := nf4PairsAsm(out[:n], blk[:2*n], r)
		nf4PairsGo(out[done:n], blk[2*done:2*n], r)
	} else {
		nf4PairsGo(out[:n], blk[:2*n], r)
	}
	if len(blk)%2 == 1 {
		out[n] = nf4Code(float32(blk[2*n]*r))<<4 | nf4ZeroCode
	}
}

func nf4PairsGo(out []byte, blk []float32, r float32) {
	blk = blk[:2*len(out)]
	for j := range out {
		hi := nf4Code(float32(blk[2*j] * r))
		lo := nf4Code(float32(blk[2*j+1] * r))
		out[j] = hi<<4 | lo
	}
}

// nf4Code returns the number of thresholds strictly below y, for y in
// [-1-2^-20, 1+2^-20], through a table over 2048 equal buckets of [-1, 1]: a
// bucket's entry counts the thresholds below it and holds the single
// threshold (if any) within one bucket-width of it, which is then compared
// exactly. The bucket index needs no exact arithmetic: an error of up to one
// bucket is covered by that margin, and thresholds lie 0.079 or more apart.
func nf4Code(y float32) uint8 {
	b := int32(y*nf4Scale + nf4Scale)
	b = min(max(b, 0), nf4Buckets-1)
	e := nf4LUT[b]
	c := e.base
	if y > e.thr {
		c++
	}
	return c
}

const (
	nf4Buckets = 2048
	nf4Scale   = nf4Buckets / 2
)

type nf4Entry struct {
	thr  float32
	base uint8
}

var nf4LUT = buildNF4LUT()

func buildNF4LUT() (lut [nf4Buckets]nf4Entry) {
	for b := range lut {
		lo := float64(b-nf4Scale-1) / nf4Scale
		hi := float64(b-nf4Scale+2) / nf4Scale
		e := nf4Entry{thr: float32(math.Inf(1))}
		for _, t := range nf4Thresholds {
			switch {
			case float64(t) < lo:
				e.base++
			case float64(t) <= hi:
				e.thr = t
			}
		}
		lut[b] = e
	}
	return lut
}

// DequantizeNF4 writes ŵ = NF4Codebook[code]·absmax for len(dst) elements
// whose codes are in packed (high nibble first) and whose block scales are in
// absmax. Any byte values are accepted.
func DequantizeNF4(dst []float32, packed []byte, absmax []float32, blockSize int) error {
	if err := checkNF4Block(blockSize); err != nil {
		return err
	}
	wp, wa := NF4Sizes(len(dst), blockSize)
	switch {
	case len(packed) != wp:
		return lengthError("packed", len(packed), wp)
	case len(absmax) != wa:
		return lengthError("absmax", len(absmax), wa)
	}
	for b, am := range absmax {
		start := b * blockSize
		out := dst[start:min(start+blockSize, len(dst))]
		in := packed[start/2:]
		n := len(out) / 2
		in = in[:n+len(out)%2]
		done := 0
		if useAsm && hasAVX2 && n >= 8 {
			done = dequantNF4Asm(out[:2*n], in[:n], am)
		}
		dequantNF4Go(out[2*done:2*n], in[done:n], am)
		if len(out)%2 == 1 {
			out[2*n] = NF4Codebook[in[n]>>4] * am
		}
	}
	return nil
}

// dequantNF4Go decodes the bytes of in into out (len(out) == 2·len(in)).
func dequantNF4Go(out []float32, in []byte, am float32) {
	out = out[:2*len(in)]
	for j, c := range in {
		out[2*j] = NF4Codebook[c>>4] * am
		out[2*j+1] = NF4Codebook[c&0xF] * am
	}
}
