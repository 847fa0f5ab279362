package quantize

import (
	"fmt"
	"math"
)

// QType is the integer type of a quantized tensor.
type QType string

// Integer types.
const (
	Uint8 QType = "uint8"
	Int8  QType = "int8"
)

// ParseQType reads an --activation-type value.
func ParseQType(s string) (QType, error) {
	switch QType(s) {
	case Uint8, Int8:
		return QType(s), nil
	}
	return "", fmt.Errorf("%w: activation type %q is not uint8 or int8", ErrOption, s)
}

// bounds returns the saturation range of t.
func (t QType) bounds() (lo, hi int) {
	if t == Int8 {
		return -128, 127
	}
	return 0, 255
}

// Params are the scale and zero point of one quantized tensor (or one
// channel of it).
type Params struct {
	Scale     float32 `json:"scale"`
	ZeroPoint int     `json:"zero_point"`
}

// RoundHalfEven rounds to the nearest integer, ties to even, as
// QuantizeLinear does.
func RoundHalfEven(x float64) float64 { return math.RoundToEven(x) }

// Quantize is QuantizeLinear for one value: saturate(round(x/scale) + zp)
// in t's range. The division is done in float64 of the float32 operands,
// which is what the ONNX reference (numpy on float32 inputs promoted by
// the rounding step) computes to within one float32 ulp; ties at exactly
// .5 are the only place the two can differ, and ties are rounded to even
// in both.
func Quantize(x float32, p Params, t QType) int {
	lo, hi := t.bounds()
	v := RoundHalfEven(float64(x)/float64(p.Scale)) + float64(p.ZeroPoint)
	if math.IsNaN(v) {
		return p.ZeroPoint
	}
	return int(math.Max(float64(lo), math.Min(float64(hi), v)))
}

// Dequantize is DequantizeLinear for one value.
func Dequantize(q int, p Params) float32 { return float32(q-p.ZeroPoint) * p.Scale }

// ActivationParams returns the per-tensor parameters for the range
// [rmin, rmax] in type t, asymmetric: the range is first widened to contain
// 0 (so that zero padding and ReLU-like zeros are exact), then scale =
// (rmax - rmin) / (qmax - qmin) and zero_point = round(qmin - rmin/scale)
// clamped to the type. An empty range (all zeros) gets scale 1, zero point
// at 0's code, as ONNX Runtime's tools do, so that the scale is never 0.
func ActivationParams(rmin, rmax float64, t QType) Params {
	lo, hi := t.bounds()
	rmin, rmax = math.Min(rmin, 0), math.Max(rmax, 0)
	if rmax-rmin == 0 || math.IsNaN(rmin) || math.IsNaN(rmax) {
		return Params{Scale: 1}
	}
	scale := float32((rmax - rmin) / float64(hi-lo))
	if scale == 0 || math.IsInf(float64(scale), 0) {
		// Below float32's range (or above it): clamp to the smallest
		// normal / largest finite scale rather than write 0 or Inf.
		scale = float32(math.Max(math.Min((rmax-rmin)/float64(hi-lo), math.MaxFloat32), 0x1p-126))
	}
	zp := RoundHalfEven(float64(lo) - rmin/float64(scale))
	zp = math.Max(float64(lo), math.Min(float64(hi), zp))
	return Params{Scale: scale, ZeroPoint: int(zp)}
}

// WeightQMax is the largest code of symmetric int8 weights: the range is
// [-127, 127], so that the codes are symmetric around the zero point 0 and
// -128 is never used (as ONNX Runtime's tools and TensorRT do).
const WeightQMax = 127

// WeightParams returns the symmetric int8 parameters of one output channel
// whose largest magnitude is absmax: scale = absmax/127, zero point 0. An
// all-zero channel gets scale 1.
func WeightParams(absmax float64) Params {
	if absmax == 0 || math.IsNaN(absmax) {
		return Params{Scale: 1}
	}
	s := float32(absmax / WeightQMax)
	if s == 0 {
		s = 0x1p-126
	}
	return Params{Scale: s}
}

// QuantizeWeights quantizes w, laid out with the channel axis of size
// channels at position axis of dims, per channel (symmetric int8). It
// returns the codes and one Params per channel. channels·inner·outer must
// equal len(w).
func QuantizeWeights(w []float32, dims []int64, axis int) ([]int8, []Params, error) {
	if axis < 0 || axis >= len(dims) {
		return nil, nil, fmt.Errorf("%w: channel axis %d of a rank-%d weight", ErrGraph, axis, len(dims))
	}
	channels := int(dims[axis])
	inner := 1 // elements after the axis
	for _, d := range dims[axis+1:] {
		inner *= int(d)
	}
	if channels < 1 || inner < 1 || len(w)%(channels*inner) != 0 {
		return nil, nil, fmt.Errorf("%w: weight of %d values does not fit dims %v", ErrGraph, len(w), dims)
	}
	ch := func(i int) int { return (i / inner) % channels }
	absmax := make([]float64, channels)
	for i, v := range w {
		if a := math.Abs(float64(v)); a > absmax[ch(i)] {
			absmax[ch(i)] = a
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("%w: weight value %d is %v", ErrNonFinite, i, v)
		}
	}
	params := make([]Params, channels)
	for c := range params {
		params[c] = WeightParams(absmax[c])
	}
	q := make([]int8, len(w))
	for i, v := range w {
		// Saturate to ±127: absmax/scale can round to 127.00001 and so to
		// 127 at most; -128 stays unused.
		c := Quantize(v, params[ch(i)], Int8)
		q[i] = int8(max(-WeightQMax, c))
	}
	return q, params, nil
}
