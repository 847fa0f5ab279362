package quant

// Float64 references, written independently of the fast paths. Each follows
// the published algorithm step by step; where that algorithm rounds to
// float32, the reference rounds the float64 result explicitly (a single
// float32 operation evaluated in float64 and rounded once is exact, since
// 53 ≥ 2·24+2). Where the package extends the exponent range, the reference
// rounds to 24 significant bits with no exponent limit (round24).

import (
	"math"
	"sort"
	"strconv"
)

// round24 rounds v to 24 significant bits, ties to even, with no exponent
// range limit.
func round24(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	fr, e := math.Frexp(v)
	return math.Ldexp(math.RoundToEven(fr*(1<<24)), e-24)
}

// ---- FP16 / BF16 ----

// halfValues lists the value of every non-negative finite half and, as the
// last entry, 65536 standing in for +Inf: rounding to nearest over this list
// (ties to the even bit pattern) is IEEE rounding to binary16, overflow
// included, since 65536 is where the next binade would start.
var halfValues = func() []float64 {
	v := make([]float64, 0x7C01)
	for h := 0; h <= 0x7C00; h++ {
		e, m := h>>10, h&0x3FF
		switch {
		case h == 0x7C00:
			v[h] = 65536
		case e == 0:
			v[h] = math.Ldexp(float64(m), -24)
		default:
			v[h] = math.Ldexp(float64(m|0x400), e-25)
		}
	}
	return v
}()

// refF16 rounds x to binary16 by searching the sorted list of halves.
func refF16(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	if x != x {
		// quiet NaN, sign and top 9 payload bits kept (VCVTPS2PH)
		return sign | 0x7E00 | uint16(b>>13)&0x1FF
	}
	a := math.Abs(float64(x))
	if math.IsInf(a, 0) {
		return sign | 0x7C00
	}
	i := sort.SearchFloat64s(halfValues, a) // first ≥ a
	if i == len(halfValues) {
		return sign | 0x7C00
	}
	if halfValues[i] == a {
		return sign | uint16(i)
	}
	lo, hi := i-1, i
	dl, dh := a-halfValues[lo], halfValues[hi]-a // exact: neighbours are close
	switch {
	case dl < dh:
		return sign | uint16(lo)
	case dh < dl:
		return sign | uint16(hi)
	case lo%2 == 0:
		return sign | uint16(lo)
	default:
		return sign | uint16(hi)
	}
}

// refF16Value builds the value of h from its fields.
func refF16Value(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e, m := int(h>>10)&0x1F, int(h&0x3FF)
	switch {
	case e == 0:
		return s * math.Ldexp(float64(m), -24)
	case e == 31 && m == 0:
		return math.Inf(int(s))
	case e == 31:
		return math.NaN()
	}
	return s * math.Ldexp(float64(1024+m), e-25)
}

// refBF16 rounds x to bfloat16: the two candidates are x truncated to 16 bits
// and the next bfloat16 up in magnitude.
func refBF16(x float32) uint16 {
	b := math.Float32bits(x)
	if x != x {
		return uint16(b>>16) | 0x40
	}
	sign := uint16(b>>16) & 0x8000
	a := b & 0x7FFFFFFF
	lo := uint16(a >> 16)
	if a&0xFFFF == 0 {
		return sign | lo
	}
	hi := lo + 1
	val := func(h uint16) float64 {
		if h == 0x7F80 { // the binade after the largest finite
			return math.Ldexp(1, 128)
		}
		return float64(math.Float32frombits(uint32(h) << 16))
	}
	ax := float64(math.Float32frombits(a))
	dl, dh := ax-val(lo), val(hi)-ax
	switch {
	case dl < dh:
		return sign | lo
	case dh < dl:
		return sign | hi
	case lo%2 == 0:
		return sign | lo
	default:
		return sign | hi
	}
}

// ---- INT8 ----

// refInt8Row is int8_vectorwise_quant for one row: SCB = max|x|,
// scale = float32(127/SCB), q = RNE(float32(x·scale)); float32 roundings
// use round24 (no overflow at tiny SCB).
func refInt8Row(row []float32) (scb float32, q []int8) {
	var m float64
	for _, x := range row {
		m = math.Max(m, math.Abs(float64(x)))
	}
	q = make([]int8, len(row))
	if m == 0 {
		return 0, q
	}
	scale := round24(127 / m)
	for i, x := range row {
		q[i] = int8(math.RoundToEven(round24(float64(x) * scale)))
	}
	return float32(m), q
}

// ---- INT4 (ORT BlockwiseQuantizer) ----

type refInt4Block struct {
	scale float32
	zp    int
	codes []uint8
}

// refInt4 quantizes one block. ok is false when the asymmetric range
// overflows float32 (or the scale overflows half with f16).
func refInt4(blk []float32, bs int, sym, f16 bool) (r refInt4Block, ok bool) {
	// signed absmax: largest magnitude, negative on a tie; all zeros: the
	// first element (ORT keeps the first of equal values).
	var lo, hi float64 = math.Inf(1), math.Inf(-1)
	var big, first float64
	for i, x := range blk {
		v := float64(x)
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		if i == 0 {
			first = v
		}
		if math.Abs(v) > math.Abs(big) || (math.Abs(v) == math.Abs(big) && v < big) {
			big = v
		}
	}
	var scale float64
	if sym {
		if big == 0 {
			big = first // keeps the zero's sign
		}
		scale = float64(float32(-big / 8))
		r.zp = 8
	} else {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
		d := float64(float32(hi - lo))
		if math.IsInf(d, 0) {
			return r, false
		}
		scale = float64(float32(d / 15))
		zf := lo
		if scale != 0 {
			zf = -float64(float32(lo / scale))
		}
		switch {
		case zf < 0:
			r.zp = 0
		case zf > 15:
			r.zp = 15
		default:
			r.zp = int(math.Round(zf))
		}
	}
	if f16 {
		h := refF16(float32(scale))
		if h&0x7FFF == 0x7C00 {
			return r, false
		}
		scale = refF16Value(h)
	}
	r.scale = float32(scale)
	r.codes = make([]uint8, bs)
	for i := range r.codes {
		r.codes[i] = uint8(r.zp)
	}
	if scale == 0 {
		return r, true
	}
	rcp := round24(1 / scale)
	for i, x := range blk {
		t := round24(float64(x) * rcp)
		u := float64(float32(t + float64(r.zp)))
		q := math.Round(u) // half away from zero, like roundf
		r.codes[i] = uint8(math.Min(math.Max(q, 0), 15))
	}
	return r, true
}

// ---- NF4 ----

// refNF4Thresholds are the kernel's float literals (bnbNF4Literals) read by
// strconv, which rounds the decimal straight to float32 as a C++ compiler
// does for a literal with an f suffix. (Rounding the float64 midpoint to
// float32 instead gives a different float32 for four of them: the exact
// midpoints of two float32 entries sit halfway between two float32 values.)
var refNF4Thresholds = func() (t [15]float64) {
	for i, lit := range bnbNF4Literals {
		v, err := strconv.ParseFloat(lit, 32)
		if err != nil {
			panic(err)
		}
		t[i] = v
	}
	return t
}()

// pinnedNF4 is the codebook as docs/design.md and bitsandbytes' functional.py
// print it.
var pinnedNF4 = [16]float64{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// refNF4Code counts thresholds strictly below y.
func refNF4Code(y float64) uint8 {
	c := uint8(0)
	for _, t := range refNF4Thresholds {
		if y > t {
			c++
		}
	}
	return c
}

// refNF4 returns the codes (unpacked, one per element, odd length padded with
// the code of 0) and absmax of src.
func refNF4(src []float32, bs int) (codes []uint8, absmax []float32) {
	n := len(src)
	codes = make([]uint8, n+n%2)
	for i := range codes {
		codes[i] = 7
	}
	for start := 0; start < n; start += bs {
		blk := src[start:min(start+bs, n)]
		var m float64
		for _, x := range blk {
			m = math.Max(m, math.Abs(float64(x)))
		}
		absmax = append(absmax, float32(m))
		if m == 0 {
			continue
		}
		rcp := round24(1 / m)
		for i, x := range blk {
			codes[start+i] = refNF4Code(round24(float64(x) * rcp))
		}
	}
	return codes, absmax
}

// ---- dynamic map and double quant ----

// refDynCode picks an entry of the sorted map c by its float32 midpoints:
// between entries j and j+1 the midpoint m goes to the one with the even
// index, so x moves past m when x > m (j even) or x ≥ m (j odd). The result
// is how many midpoints x moves past.
func refDynCode(c *[256]float32, x float64) uint8 {
	n := 0
	for j := 0; j < 255; j++ {
		m := float64(float32((float64(c[j]) + float64(c[j+1])) / 2))
		if x > m || (j%2 == 1 && x == m) {
			n++
		}
	}
	return uint8(n)
}

// refDoubleQuant mirrors quantize_4bit's compress_statistics step.
func refDoubleQuant(absmax []float32, nb int) (codes []uint8, nested []float32, offset float32) {
	if len(absmax) == 0 {
		return nil, nil, 0
	}
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	offset = float32(sum / float64(len(absmax)))
	c := DynamicMap(true)
	codes = make([]uint8, len(absmax))
	for start := 0; start < len(absmax); start += nb {
		in := absmax[start:min(start+nb, len(absmax))]
		v := make([]float64, len(in))
		var m float64
		for i, a := range in {
			v[i] = float64(float32(float64(a) - float64(offset)))
			m = math.Max(m, math.Abs(v[i]))
		}
		nested = append(nested, float32(m))
		for i := range in {
			if m == 0 {
				codes[start+i] = 127
				continue
			}
			codes[start+i] = refDynCode(&c, round24(v[i]*round24(1/m)))
		}
	}
	return codes, nested, offset
}

// bnbDQuantize transliterates bitsandbytes' dQuantize<0> (binary search with
// explicit lower/upper pivots) as a third opinion for dynQuantize.
func bnbDQuantize(c *[256]float32, x float32) uint8 {
	pivot, upperPivot, lowerPivot := 127, 255, 0
	lower, upper := float32(-1), float32(1)
	val := c[pivot]
	for i := 64; i > 0; i >>= 1 {
		if x > val {
			lowerPivot, lower = pivot, val
			pivot += i
		} else {
			upperPivot, upper = pivot, val
			pivot -= i
		}
		val = c[pivot]
	}
	if upperPivot == 255 {
		upper = c[upperPivot]
	}
	if lowerPivot == 0 {
		lower = c[lowerPivot]
	}
	if x > val {
		if x > (upper+val)*0.5 {
			return uint8(upperPivot)
		}
		return uint8(pivot)
	}
	if x < (lower+val)*0.5 {
		return uint8(lowerPivot)
	}
	return uint8(pivot)
}
