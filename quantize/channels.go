package quantize

import (
	"fmt"
	"math"

	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
)

// ChannelStats are per-channel moments of one activation tensor over the
// calibration data, the channel being the last dimension (a Linear's input
// features): Σ|x_j|, Σx_j² and the number of rows. Memory is two float64 per
// channel whatever the number of samples. Rows are added in the order the
// batches arrive, each batch's rows in order, so the sums are a
// deterministic function of the inputs.
type ChannelStats struct {
	Channels  int
	Rows      int64
	SumAbs    []float64
	SumSq     []float64
	NonFinite int64
}

// NewChannelStats returns empty statistics; the channel count is taken
// from the first tensor added.
func NewChannelStats() *ChannelStats { return &ChannelStats{} }

// Add folds a runtime output (float32 or float16, any rank ≥ 1) into c.
// Non-finite values are counted and left out of the sums.
func (c *ChannelStats) Add(t *verify.Tensor) error {
	if len(t.Shape) == 0 {
		return fmt.Errorf("%w: tensor %q is a scalar; channel statistics need a last dimension", ErrGraph, t.Name)
	}
	ch := t.Shape[len(t.Shape)-1]
	v := t.F32
	if t.DType == verify.Float16 {
		v = make([]float32, len(t.U16))
		quant.F16ToF32(v, t.U16)
	} else if t.DType != verify.Float32 {
		return fmt.Errorf("%w: tensor %q is %s; channel statistics need float", ErrGraph, t.Name, t.DType)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return fmt.Errorf("%w: tensor %q has shape %v", ErrGraph, t.Name, t.Shape)
		}
		n *= d
	}
	if ch <= 0 || n != int64(len(v)) {
		return fmt.Errorf("%w: tensor %q: %d values for shape %v", ErrGraph, t.Name, len(v), t.Shape)
	}
	if c.SumAbs == nil {
		c.Channels = int(ch)
		c.SumAbs, c.SumSq = make([]float64, ch), make([]float64, ch)
	} else if int64(c.Channels) != ch {
		return fmt.Errorf("%w: tensor %q has %d channels, earlier batches %d", ErrGraph, t.Name, ch, c.Channels)
	}
	k := c.Channels
	for r := 0; r+k <= len(v); r += k {
		for j, x := range v[r : r+k] {
			f := float64(x)
			if f-f != 0 { // NaN or ±Inf
				c.NonFinite++
				continue
			}
			c.SumAbs[j] += math.Abs(f)
			c.SumSq[j] += f * f
		}
		c.Rows++
	}
	return nil
}

// Means returns E|x_j| and E[x_j²], each snapped to 12 significant bits
// (a relative grid of 2^-12): a last-bit difference in what the runtime
// computed (thread count, CPU kernel) then almost never changes what is
// derived from them, as quantize's ranges are snapped (see snap).
func (c *ChannelStats) Means() (meanAbs, meanSq []float64) {
	meanAbs, meanSq = make([]float64, c.Channels), make([]float64, c.Channels)
	if c.Rows == 0 {
		return meanAbs, meanSq
	}
	n := float64(c.Rows)
	for j := range meanAbs {
		meanAbs[j] = snap12(c.SumAbs[j] / n)
		meanSq[j] = snap12(c.SumSq[j] / n)
	}
	return meanAbs, meanSq
}

// snap12 rounds a non-negative value to 12 significant bits.
func snap12(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	f, e := math.Frexp(v)
	return math.Ldexp(math.Round(f*4096)/4096, e)
}
