package quant

import (
	"fmt"
	"math"
	"slices"
)

// Double quantization of NF4 block scales (bitsandbytes quantize_4bit with
// compress_statistics=True):
//
//	offset   = mean(absmax)
//	v        = float32(absmax - offset)
//	nested_b = max |v| over each run of nestedBlock scales (256)
//	code     = dQuantize(DynamicMap(true), float32(v · (1/nested_b)))
//	absmax'  = float32(DynamicMap(true)[code]·nested_b) + offset
//
// quantize_blockwise runs kQuantizeBlockwise with the General8bit path:
// dQuantize walks the sorted 256-entry map as a binary tree of depth 8 and
// picks between the leaf and its neighbour by the float32 midpoint
// (a+b)·0.5. Ties at a midpoint go to the entry with the even index.
//
// bitsandbytes takes the mean with torch's float32 reduction, whose rounding
// depends on the device and on torch's summation order; here it is the
// float64 sum rounded once to float32, so offset can differ from a torch-made
// one in its last bit (the codes are computed against this package's offset,
// and absmax' is consistent with it). A run of scales all equal to offset has
// nested 0; its codes are 127, the map's 0.0 (bitsandbytes gets NaN from 0·∞
// and code 0; absmax' is offset either way).

// Double-quant block size limits (bitsandbytes uses 256).
const (
	MinNestedBlockSize = 1
	MaxNestedBlockSize = 4096
)

// dynZeroCode is the index of 0.0 in the signed dynamic map.
const dynZeroCode = 127

var (
	dynSigned   = buildDynamicMap(true)
	dynUnsigned = buildDynamicMap(false)
)

// DynamicMap returns bitsandbytes' create_dynamic_map(signed) with its
// defaults (max_exponent_bits=7, total_bits=8): 256 float32 values, sorted.
// For each exponent i in 0..6 the map holds 10^(i-6) times the means of
// neighbouring points of torch.linspace(0.1, 1, 2^i+1) (2^(i+1)+1 unsigned),
// their negatives when signed, and 0 and 1.
//
// The float32 values are those torch produces: linspace computes
// start + step·idx for the first half and end - step·(steps-1-idx) for the
// second, and the C++ compiler contracts that into one fused multiply-add
// (a single rounding); means are float32 sums halved, and the scale factor
// 10^(i-6) is rounded to float32 before the float32 multiply. The contracted
// form reproduces, entry for entry, the 256-value table that bitsandbytes
// writes as nested_quant_map; the uncontracted one differs in 21 entries.
func DynamicMap(signed bool) [256]float32 {
	if signed {
		return dynSigned
	}
	return dynUnsigned
}

func buildDynamicMap(signed bool) (out [256]float32) {
	const maxExpBits = 7
	data := make([]float32, 0, 256)
	for i := 0; i < maxExpBits; i++ {
		items := 1<<i + 1
		if !signed {
			items = 1<<(i+1) + 1
		}
		b := torchLinspace(0.1, 1, items)
		p := float32(math.Pow10(i - (maxExpBits - 1)))
		for j := 0; j+1 < len(b); j++ {
			m := (b[j] + b[j+1]) / 2
			data = append(data, p*m)
			if signed {
				data = append(data, -(p * m))
			}
		}
	}
	data = append(data, 0, 1)
	slices.Sort(data)
	copy(out[:], data)
	return out
}

// torchLinspace mirrors torch.linspace for float32 on CPU (see DynamicMap).
func torchLinspace(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	step := (end - start) / float32(steps-1)
	half := steps / 2
	for i := range out {
		if i < half {
			out[i] = float32(math.FMA(float64(step), float64(i), float64(start)))
		} else {
			out[i] = float32(math.FMA(-float64(step), float64(steps-1-i), float64(end)))
		}
	}
	return out
}

func checkNestedBlock(nb int) error {
	if nb < MinNestedBlockSize || nb > MaxNestedBlockSize {
		return fmt.Errorf("%w: double-quant block size %d (want %d to %d)",
			ErrBlockSize, nb, MinNestedBlockSize, MaxNestedBlockSize)
	}
	return nil
}

// DoubleQuant compresses NF4 block scales: codes (one per absmax) and nested
// (one float32 per nestedBlock scales), returning the offset. It returns a
// *NonFiniteError for NaN or ±Inf in absmax, and ErrRange when a restored
// scale would overflow float32 (absmax within an ulp or so of MaxFloat32); on
// any error the outputs are unspecified.
func DoubleQuant(codes []uint8, nested []float32, absmax []float32, nestedBlock int) (offset float32, err error) {
	if err := checkNestedBlock(nestedBlock); err != nil {
		return 0, err
	}
	wn := (len(absmax) + nestedBlock - 1) / nestedBlock
	switch {
	case len(codes) != len(absmax):
		return 0, lengthError("codes", len(codes), len(absmax))
	case len(nested) != wn:
		return 0, lengthError("nested", len(nested), wn)
	}
	if len(absmax) == 0 {
		return 0, nil
	}
	var sum float64
	for i, a := range absmax {
		if math.Float32bits(a)&f32AbsMask >= f32Inf {
			return 0, &NonFiniteError{Index: i, Value: a}
		}
		sum += float64(a)
	}
	offset = float32(sum / float64(len(absmax)))
	var tmp [MaxNestedBlockSize]float32
	for b := range nested {
		start := b * nestedBlock
		in := absmax[start:min(start+nestedBlock, len(absmax))]
		out := codes[start : start+len(in)]
		v := tmp[:len(in)]
		for i, a := range in {
			v[i] = a - offset
		}
		bits := absMaxBits(v)
		if bits >= f32Inf { // offset - a overflowed: impossible for finite a ≥ 0, guard anyway
			return 0, fmt.Errorf("%w: absmax minus offset overflows", ErrRange)
		}
		nm := math.Float32frombits(bits)
		nested[b] = nm
		switch {
		case nm == 0:
			for i := range out {
				out[i] = dynZeroCode
			}
		case bits < minNormalBits || bits > maxRcpNormalBits:
			_, e := math.Frexp(float64(nm))
			s := math.Ldexp(1, 1-e)
			r := 1 / float32(float64(nm)*s)
			for i, x := range v {
				out[i] = dynQuantize(float32(float32(float64(x)*s) * r))
			}
		default:
			r := 1 / nm
			for i, x := range v {
				out[i] = dynQuantize(float32(x * r))
			}
		}
		// Scales within an ulp of MaxFloat32 can come back as ±Inf.
		for _, c := range out {
			if a := float32(dynSigned[c]*nm) + offset; a > math.MaxFloat32 {
				return 0, fmt.Errorf("%w: block scale %g is too large for double quantization", ErrRange, a)
			}
		}
	}
	return offset, nil
}

// dynQuantize is bitsandbytes' dQuantize (non-stochastic) over the signed
// dynamic map. The kernel walks the sorted map as a perfect binary tree over
// indices 0..254 (seven comparisons with inner nodes, all odd), lands on an
// even leaf p whose neighbours p-1 and p+1 are both ancestors, and then picks
// between p and the neighbour on x's side by the float32 midpoint (a+b)·0.5,
// keeping p on a tie. So the result is the number of midpoints x moves past,
// where x moves past the midpoint of entries j and j+1 when x > m (j even)
// or x ≥ m (j odd), i.e. x > m' with m' = m for even j and the float32 just
// below m for odd j.
//
// That count comes from a table indexed by x's sign, exponent and top 7
// fraction bits: each bucket spans less than 2^-7 relative, while the
// midpoints are at least 0.014 relative apart, so a bucket holds at most one
// m' (checked when the table is built). Values below 2^-22 in magnitude
// all get 127, the code of 0.0: the nearest midpoints are ±2.75e-7.
func dynQuantize(x float32) uint8 {
	b := math.Float32bits(x)
	e := b >> 23 & 0xFF
	switch {
	case e < dynMinExp:
		return dynZeroCode
	case e > 127: // |x| ≥ 2, ±Inf or NaN: cannot come from DoubleQuant
		if x > 0 {
			return 255
		}
		return 0 // NaN fails every comparison, as in the kernel
	}
	frac := b >> (23 - dynFracBits) & (1<<dynFracBits - 1)
	i := (b>>31)*dynHalf + (e-dynMinExp)<<dynFracBits + frac
	ent := dynLUT[i]
	c := ent.base
	if x > ent.thr {
		c++
	}
	return c
}

const (
	dynMinExp   = 127 - 22
	dynFracBits = 7
	dynHalf     = (127 - dynMinExp + 1) << dynFracBits
)

type dynEntry struct {
	thr  float32
	base uint8
}

var dynLUT = buildDynLUT()

// buildDynLUT fills the table behind dynQuantize from the strict thresholds
// m' (see there): a bucket's base counts the m' below its smallest value and
// thr is the first m' at or above it.
func buildDynLUT() (lut [2 * dynHalf]dynEntry) {
	c := &dynSigned
	var th [255]float32
	for j := range th {
		m := (c[j] + c[j+1]) * 0.5
		if j%2 == 1 {
			m = math.Nextafter32(m, float32(math.Inf(-1)))
		}
		th[j] = m
	}
	for sign := uint32(0); sign < 2; sign++ {
		for k := uint32(0); k < dynHalf; k++ {
			exp, frac := k>>dynFracBits+dynMinExp, k&(1<<dynFracBits-1)
			lo := exp<<23 + frac<<(23-dynFracBits) // smallest magnitude in the bucket
			hi := lo + (1<<(23-dynFracBits) - 1)   // largest
			xmin, xmax := math.Float32frombits(lo), math.Float32frombits(hi)
			if sign == 1 {
				xmin, xmax = -xmax, -xmin
			}
			base := 0
			for base < len(th) && th[base] < xmin {
				base++
			}
			e := dynEntry{thr: float32(math.Inf(1)), base: uint8(base)}
			if base < len(th) {
				e.thr = th[base]
				if base+1 < len(th) && th[base+1] < xmax {
					panic("quant: two dynamic-map midpoints in one table bucket")
				}
			}
			lut[sign*dynHalf+k] = e
		}
	}
	return lut
}

// UndoDoubleQuant restores the block scales: dst[i] =
// float32(DynamicMap(true)[codes[i]]·nested[i/nestedBlock]) + offset.
func UndoDoubleQuant(dst []float32, codes []uint8, nested []float32, offset float32, nestedBlock int) error {
	if err := checkNestedBlock(nestedBlock); err != nil {
		return err
	}
	wn := (len(dst) + nestedBlock - 1) / nestedBlock
	switch {
	case len(codes) != len(dst):
		return lengthError("codes", len(codes), len(dst))
	case len(nested) != wn:
		return lengthError("nested", len(nested), wn)
	}
	for i, c := range codes {
		dst[i] = float32(dynSigned[c]*nested[i/nestedBlock]) + offset
	}
	return nil
}
