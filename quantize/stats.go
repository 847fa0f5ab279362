package quantize

import (
	"fmt"
	"math"
)

// Method is how a calibrated range is chosen from a tensor's statistics.
type Method string

// Calibration methods.
const (
	// MinMax takes the observed minimum and maximum.
	MinMax Method = "minmax"
	// Percentile clips both tails at a percentile of the values.
	Percentile Method = "percentile"
	// Entropy picks the symmetric threshold that minimises the KL
	// divergence between the value distribution and its quantized form.
	Entropy Method = "entropy"
)

// DefaultPercentile is --percentile's default.
const DefaultPercentile = 99.999

// ParseMethod reads a --method value.
func ParseMethod(s string) (Method, error) {
	switch Method(s) {
	case MinMax, Percentile, Entropy:
		return Method(s), nil
	}
	return "", fmt.Errorf("%w: method %q is not minmax, percentile or entropy", ErrOption, s)
}

// HistBins is the number of histogram bins of a tensor's statistics, over
// the symmetric range [-R, R): HistBins/2 bins for each sign, the 2048 bins
// of |x| that TensorRT's entropy calibration searches over. Memory is
// HistBins·8 bytes per tensor, whatever the number of samples.
const HistBins = 4096

// Stats are one tensor's streaming statistics: exact running min and max,
// counts of non-finite values, and a histogram over [-R, R) whose R is a
// power of two that doubles (merging bins pairwise, exactly) whenever a
// value falls outside. Everything is a deterministic function of the
// values in the order they were added.
type Stats struct {
	Min, Max  float64
	Count     int64
	NonFinite int64
	// FP16 range counts: |x| above FP16's largest finite value (overflow
	// to Inf), 0 < |x| < 2^-25 (rounds to 0 in FP16), and
	// 2^-25 ≤ |x| < 2^-14 (FP16 subnormal: fewer significant bits).
	Over16, Flush16, Sub16 int64
	// Exp is log2 R; the histogram is empty while Count is 0 or every
	// value was 0 (then Exp is minExp).
	Exp  int
	Hist []int64
}

// FP16 limits: the largest finite value, half the smallest subnormal
// (below it a value rounds to 0) and the smallest normal.
const (
	fp16Max       = 65504
	fp16Flush     = 0x1p-25
	fp16MinNormal = 0x1p-14
)

// minExp bounds R from below: values under 2^-100 in magnitude all fall in
// the two central bins, which loses nothing a uint8 scale can resolve.
const minExp = -100

// NewStats returns empty statistics.
func NewStats() *Stats {
	return &Stats{Min: math.Inf(1), Max: math.Inf(-1), Exp: minExp, Hist: make([]int64, HistBins)}
}

// width is the bin width, 2R/HistBins.
func (s *Stats) width() float64 { return math.Ldexp(2, s.Exp) / HistBins }

// Float32 bit patterns (sign cleared) of the limits Add classifies by.
const (
	f32InfBits       = 0x7f800000 // +Inf; above it NaN
	fp16MaxBits      = 0x477fe000 // 65504
	fp16FlushBits    = 0x33000000 // 2^-25
	fp16MinNormalBit = 0x38800000 // 2^-14
)

// Add folds the values of x into s. It takes two passes: one for min, max,
// non-finite values and the FP16 counts (and to grow R once for the
// batch), one to bin. This runs over every calibrated activation, so the
// first pass classifies by the float32 bit pattern with the sign cleared
// (one integer compare per class, the branches almost never taken)
// instead of comparing |v| as a float: taking |v| by a branch on the sign
// mispredicts on half of the values, and cost 6× the whole pass.
func (s *Stats) Add(x []float32) {
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	var bad, over, flush, sub int64
	for _, v := range x {
		ab := math.Float32bits(v) &^ (1 << 31)
		if ab >= f32InfBits { // NaN or ±Inf
			bad++
			continue
		}
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
		if ab-1 < fp16MinNormalBit-1 { // 0 < |v| < 2^-14 (ab = 0 wraps around)
			if ab < fp16FlushBits {
				flush++
			} else {
				sub++
			}
		} else if ab > fp16MaxBits {
			over++
		}
	}
	s.NonFinite += bad
	s.Over16 += over
	s.Flush16 += flush
	s.Sub16 += sub
	if int64(len(x)) == bad {
		return
	}
	first := s.Count == 0
	s.Count += int64(len(x)) - bad
	s.Min, s.Max = math.Min(s.Min, float64(lo)), math.Max(s.Max, float64(hi))
	absmax := math.Max(-float64(lo), float64(hi))
	if first {
		// The histogram is empty: start at absmax's power of two.
		_, e := math.Frexp(absmax) // absmax < 2^e
		s.Exp = max(minExp, e)
	}
	for absmax >= math.Ldexp(1, s.Exp) {
		s.grow()
	}
	// -R ≤ v < R, so v·inv + HistBins/2 is in [0, HistBins): truncation is
	// floor, and inv is a power of two, so the product is exact.
	inv := 1 / s.width()
	half := float64(HistBins / 2)
	h := s.Hist[:HistBins]
	if bad == 0 {
		for _, v := range x {
			h[int(float64(v)*inv+half)]++
		}
		return
	}
	for _, v := range x {
		if f := float64(v); f-f == 0 { // finite
			h[int(f*inv+half)]++
		}
	}
}

// grow doubles R: the old range becomes the middle half of the new one,
// each new bin the sum of two old ones (HistBins/2 is even, so bin pairs
// never straddle 0).
func (s *Stats) grow() {
	n := HistBins
	merged := make([]int64, n)
	for i := 0; i < n; i++ {
		merged[n/4+i/2] += s.Hist[i]
	}
	copy(s.Hist, merged)
	s.Exp++
}

// Range returns the calibrated [lo, hi] of s for a method; percentile is
// used by Percentile only. lo ≤ 0 ≤ hi is not forced here (the scale
// computation widens the range to contain 0).
func (s *Stats) Range(m Method, percentile float64) (lo, hi float64) {
	if s.Count == 0 {
		return 0, 0
	}
	switch m {
	case Percentile:
		lo, hi = s.quantile(1-percentile/100, false), s.quantile(percentile/100, true)
	case Entropy:
		t := s.entropyThreshold()
		lo, hi = -t, t
	default:
		return s.Min, s.Max
	}
	return math.Max(lo, s.Min), math.Min(hi, s.Max)
}

// quantile returns the bin edge below which a fraction q of the values
// lie: the upper edge of the bin that reaches it when upper, else the
// lower edge of that bin (so that the clipped tail is at most 1-q on
// either side, never more).
func (s *Stats) quantile(q float64, upper bool) float64 {
	w := s.width()
	r := math.Ldexp(1, s.Exp)
	target := q * float64(s.Count)
	var cum float64
	for i, c := range s.Hist {
		cum += float64(c)
		if cum >= target && c > 0 || cum >= target && i == HistBins-1 {
			if upper {
				return -r + float64(i+1)*w
			}
			return -r + float64(i)*w
		}
	}
	return r
}

// Clipped returns the fraction of values outside [lo, hi], counted by
// bins (a bin counts as clipped when it lies wholly outside).
func (s *Stats) Clipped(lo, hi float64) float64 {
	if s.Count == 0 {
		return 0
	}
	w := s.width()
	r := math.Ldexp(1, s.Exp)
	var n int64
	for i, c := range s.Hist {
		a, b := -r+float64(i)*w, -r+float64(i+1)*w
		if b <= lo || a > hi {
			n += c
		}
	}
	return float64(n) / float64(s.Count)
}
