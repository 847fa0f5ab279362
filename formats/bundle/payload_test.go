package bundle

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantpack/quantpack/quant"
)

// The payloads below are the byte patterns of real quantized weights, for
// the compression measurements and benchmarks: weights drawn from
// N(0, 0.02²) (the initializer scale of ViT/DeiT/BEiT checkpoints) stored
// as FP16, BF16 (quant.F32ToF16/F32ToBF16), INT8 codes with row absmax
// (quant.QuantizeInt8Rows, rows of 768) and NF4 packed nibbles
// (quant.QuantizeNF4, blocks of 64, high nibble first). The first level
// measurements were taken before quant existed, with the bit-level
// conversions in this file; TestPayloadConversions checks that both give
// the same bytes.

// payloadKinds are the precisions the level measurement covers.
var payloadKinds = []string{"fp16", "bf16", "int8", "nf4"}

const payloadRow = 768 // in-features of a ViT-Base Linear

func normalWeights(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.02)
	}
	return w
}

// f32ToF16 converts with round-to-nearest-even. Weights of σ=0.02 are far
// from the fp16 overflow and subnormal edges except for the tiny tail, which
// is handled by the subnormal branch.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case (b>>23)&0xff == 0xff: // Inf/NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		half := uint32(1) << (shift - 1)
		q := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	q := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // a carry into the exponent is the correct rounding
	}
	return sign | uint16(q)
}

// f32ToBF16 keeps the top 16 bits with round-to-nearest-even.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

var nf4Codebook = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
	0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
	0.7229568362236023, 1.0,
}

func nf4Code(x float32) byte {
	best, bd := 0, float32(math.Inf(1))
	for i, c := range nf4Codebook {
		if d := float32(math.Abs(float64(x - c))); d < bd {
			best, bd = i, d
		}
	}
	return byte(best)
}

// refPayload is makePayload computed independently of quant, from
// math.Float32bits and the codebook.
func refPayload(kind string, n int, seed uint64) []byte {
	out := make([]byte, 0, n)
	switch kind {
	case "fp16", "bf16":
		w := normalWeights(n/2, seed)
		for _, x := range w {
			v := f32ToF16(x)
			if kind == "bf16" {
				v = f32ToBF16(x)
			}
			out = binary.LittleEndian.AppendUint16(out, v)
		}
	case "int8":
		w := normalWeights(n, seed)
		for r := 0; r < len(w); r += payloadRow {
			row := w[r:min(r+payloadRow, len(w))]
			var amax float32
			for _, x := range row {
				amax = max(amax, float32(math.Abs(float64(x))))
			}
			scale := 127 / amax // float32, as bitsandbytes and quant compute it
			for _, x := range row {
				out = append(out, byte(int8(math.RoundToEven(float64(x*scale)))))
			}
		}
	case "nf4":
		w := normalWeights(2*n, seed)
		for b := 0; b < len(w); b += 64 {
			blk := w[b:min(b+64, len(w))]
			var amax float32
			for _, x := range blk {
				amax = max(amax, float32(math.Abs(float64(x))))
			}
			for j := 0; j+1 < len(blk); j += 2 {
				out = append(out, nf4Code(blk[j]/amax)<<4|nf4Code(blk[j+1]/amax))
			}
		}
	default:
		panic("unknown payload " + kind)
	}
	return out
}

func TestPayloadConversions(t *testing.T) {
	// Hand-computed: 1.0 = 0x3C00; 0.02 = 1.28·2⁻⁶ → exp 9, mantissa
	// round(0.28·1024)=287 → 0x251F; 65520 rounds up to Inf; 2⁻²⁴ is the
	// smallest fp16 subnormal (0x0001).
	f16 := []struct {
		in   float32
		want uint16
	}{{1, 0x3c00}, {-2, 0xc000}, {0.02, 0x251f}, {65504, 0x7bff}, {65520, 0x7c00}, {0x1p-24, 0x0001}, {0x1p-26, 0}}
	for _, c := range f16 {
		if got := f32ToF16(c.in); got != c.want {
			t.Errorf("f32ToF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	// bf16: 1+2⁻⁸ is a tie between 1.0 (even) and 1+2⁻⁷; 1+3·2⁻⁸ rounds up.
	bf := []struct {
		in   float32
		want uint16
	}{{1, 0x3f80}, {1 + 0x1p-8, 0x3f80}, {1 + 3*0x1p-8, 0x3f82}, {-0.02, 0xbca4}}
	for _, c := range bf {
		if got := f32ToBF16(c.in); got != c.want {
			t.Errorf("f32ToBF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	// The payloads from quant and from the reference conversions above are
	// byte-identical: fp16/bf16 are both round-to-nearest-even, int8 both
	// round half to even after one float32 multiply, nf4 both pick the
	// nearest codebook entry (quant by the kernel's midpoint literals, which
	// can only disagree within 1e-7 of a midpoint; none of these weights is).
	for _, k := range payloadKinds {
		got, want := makePayload(k, payloadRow*1024, 11), refPayload(k, payloadRow*1024, 11)
		diff := 0
		for i := range got {
			if got[i] != want[i] {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("%s: %d of %d bytes differ between quant and the reference", k, diff, len(got))
		}
	}
	if nf4Code(-1) != 0 || nf4Code(0) != 7 || nf4Code(1) != 15 || nf4Code(0.05) != 8 {
		t.Error("nf4Code disagrees with the codebook order")
	}
	for _, k := range payloadKinds {
		if got := len(makePayload(k, 4096, 1)); got != 4096 {
			t.Errorf("%s payload: %d bytes, want 4096", k, got)
		}
	}
}

// makePayload returns n bytes of the given precision's weight encoding,
// made with the quant package.
func makePayload(kind string, n int, seed uint64) []byte {
	switch kind {
	case "fp16", "bf16":
		w := normalWeights(n/2, seed)
		h := make([]uint16, len(w))
		if kind == "fp16" {
			quant.F32ToF16(h, w)
		} else {
			quant.F32ToBF16(h, w)
		}
		out := make([]byte, 0, n)
		for _, v := range h {
			out = binary.LittleEndian.AppendUint16(out, v)
		}
		return out
	case "int8":
		rows := (n + payloadRow - 1) / payloadRow // whole rows, cut to n below
		w := normalWeights(rows*payloadRow, seed)
		q := make([]int8, len(w))
		if err := quant.QuantizeInt8Rows(q, make([]float32, rows), w, rows, payloadRow); err != nil {
			panic(err)
		}
		out := make([]byte, n)
		for i := range out {
			out[i] = byte(q[i])
		}
		return out
	case "nf4":
		w := normalWeights(2*n, seed)
		packed := make([]byte, n)
		_, na := quant.NF4Sizes(len(w), 64)
		if err := quant.QuantizeNF4(packed, make([]float32, na), w, 64); err != nil {
			panic(err)
		}
		return packed
	}
	panic("unknown payload " + kind)
}
