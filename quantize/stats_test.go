package quantize

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestQuantizeRoundingAndSaturation(t *testing.T) {
	p := Params{Scale: 0.5, ZeroPoint: 10}
	cases := []struct {
		x    float32
		t    QType
		want int
	}{
		{1.25, Uint8, 12},  // 2.5 → 2 (half to even) + 10
		{1.75, Uint8, 14},  // 3.5 → 4 + 10
		{-1.25, Uint8, 8},  // -2.5 → -2 + 10
		{200, Uint8, 255},  // saturates high
		{-200, Uint8, 0},   // saturates low
		{-200, Int8, -128}, // int8 floor
		{200, Int8, 127},
	}
	for _, c := range cases {
		if got := Quantize(c.x, p, c.t); got != c.want {
			t.Errorf("Quantize(%v, %+v, %s) = %d, want %d", c.x, p, c.t, got, c.want)
		}
	}
	if got := Dequantize(12, p); got != 1 {
		t.Errorf("Dequantize(12) = %v, want 1", got)
	}
}

// TestActivationParams checks the properties the scale rule promises
// against float64 arithmetic: 0 is exact, both ends of the range are
// within half a step after a round trip, the zero point is in range.
func TestActivationParams(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		lo, hi := -math.Abs(r.NormFloat64())*math.Pow(10, float64(r.IntN(8)-4)), math.Abs(r.NormFloat64())*math.Pow(10, float64(r.IntN(8)-4))
		if i%5 == 0 {
			lo = math.Abs(lo) // all-positive range: widened to 0
		}
		for _, qt := range []QType{Uint8, Int8} {
			p := ActivationParams(lo, hi, qt)
			qlo, qhi := qt.bounds()
			if p.ZeroPoint < qlo || p.ZeroPoint > qhi || !(p.Scale > 0) {
				t.Fatalf("[%v, %v] %s: %+v out of range", lo, hi, qt, p)
			}
			if Dequantize(Quantize(0, p, qt), p) != 0 {
				t.Fatalf("[%v, %v] %s: 0 not exact with %+v", lo, hi, qt, p)
			}
			elo, ehi := math.Min(lo, 0), math.Max(hi, 0)
			for _, x := range []float64{elo, ehi} {
				back := float64(Dequantize(Quantize(float32(x), p, qt), p))
				// Half a step, plus the zero point's rounding (another half
				// step at most moves the grid), plus float32 rounding of x.
				if math.Abs(back-x) > float64(p.Scale)*(1+1e-5)+math.Abs(x)*1e-6 {
					t.Fatalf("[%v, %v] %s: %v comes back as %v (scale %v)", lo, hi, qt, x, back, p.Scale)
				}
			}
		}
	}
	if p := ActivationParams(0, 0, Uint8); p.Scale != 1 || p.ZeroPoint != 0 {
		t.Errorf("empty range: %+v", p)
	}
}

func TestStatsHistogramExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := randF32(r, 20000, 1)
	for i := range vals {
		if i%1000 == 0 {
			vals[i] *= 300 // growth happens mid-stream
		}
	}
	one := NewStats()
	one.Add(vals)
	many := NewStats()
	for i := 0; i < len(vals); i += 777 {
		many.Add(vals[i:min(i+777, len(vals))])
	}
	if one.Exp != many.Exp || !slices.Equal(one.Hist, many.Hist) || one.Min != many.Min || one.Max != many.Max {
		t.Fatalf("one batch and many batches disagree: exp %d/%d", one.Exp, many.Exp)
	}
	var n int64
	for _, c := range one.Hist {
		n += c
	}
	if n != one.Count || n != int64(len(vals)) {
		t.Fatalf("histogram holds %d of %d values", n, len(vals))
	}
	// Every value lies in the bin the histogram says, recounted directly.
	w := one.width()
	rr := math.Ldexp(1, one.Exp)
	direct := make([]int64, HistBins)
	for _, v := range vals {
		direct[int(math.Floor((float64(v)+rr)/w))]++
	}
	if !slices.Equal(direct, one.Hist) {
		t.Fatal("merged histogram differs from one binned at the final range")
	}
	s := NewStats()
	s.Add([]float32{1, float32(math.NaN()), float32(math.Inf(1)), -2})
	if s.NonFinite != 2 || s.Count != 2 || s.Min != -2 || s.Max != 1 {
		t.Fatalf("non-finite: %+v", s)
	}
}

func TestStatsRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := randF32(r, 200000, 1)
	vals[0], vals[1] = 40, -25 // outliers
	s := NewStats()
	s.Add(vals)
	if lo, hi := s.Range(MinMax, 0); lo != -25 || hi != 40 {
		t.Errorf("minmax [%v, %v]", lo, hi)
	}
	sorted := make([]float64, len(vals))
	for i, v := range vals {
		sorted[i] = float64(v)
	}
	sort.Float64s(sorted)
	lo, hi := s.Range(Percentile, 99.9)
	// The bin edge is within one bin of the exact quantile, on the side
	// that clips less.
	exLo, exHi := sorted[int(0.001*float64(len(sorted)))], sorted[int(0.999*float64(len(sorted)))-1]
	if w := s.width(); hi < exHi || hi > exHi+w || lo > exLo || lo < exLo-w {
		t.Errorf("percentile [%v, %v], exact [%v, %v], bin %v", lo, hi, exLo, exHi, w)
	}
	if c := s.Clipped(lo, hi); c > 0.002 || c < 0.0005 {
		t.Errorf("clipped fraction %v for the 99.9th percentile of each tail", c)
	}
	// Entropy on a Gaussian with two far outliers: a threshold between
	// the bulk (about 4.5σ at 2·10⁵ samples) and the outliers.
	_, th := s.Range(Entropy, 0)
	if th < 2 || th > 12 {
		t.Errorf("entropy threshold %v on N(0,1) with outliers at 40", th)
	}
	// Uniform values: nothing to clip, the threshold is the range.
	u := NewStats()
	uv := make([]float32, 100000)
	for i := range uv {
		uv[i] = float32(r.Float64()*2 - 1)
	}
	u.Add(uv)
	if _, th := u.Range(Entropy, 0); th < 0.9 {
		t.Errorf("entropy threshold %v on U(-1,1)", th)
	}
}

func TestSnapDeterministicGrid(t *testing.T) {
	lo, hi := snap(-0.123456789, 3.14159)
	if lo > -0.123456789 || hi < 3.14159 || hi-3.14159 > 4.0/4096 {
		t.Errorf("snap: [%v, %v]", lo, hi)
	}
	// One ulp apart → same grid point (almost always: not at a grid edge).
	lo2, hi2 := snap(-0.123456789, math.Nextafter(3.14159, 4))
	if lo2 != lo || hi2 != hi {
		t.Errorf("one ulp changed the snapped range")
	}
}

// TestStatsAddClasses checks Add's bit-pattern classification against the
// definitions in float64, on the values at and around every limit.
func TestStatsAddClasses(t *testing.T) {
	var vals []float32
	for _, b := range []float64{0, fp16Flush, fp16MinNormal, fp16Max, math.MaxFloat32, 1} {
		f := float32(b)
		for _, v := range []float32{f, math.Nextafter32(f, 0), math.Nextafter32(f, float32(math.Inf(1)))} {
			vals = append(vals, v, -v)
		}
	}
	vals = append(vals, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.SmallestNonzeroFloat32, 0x1p-130)
	r := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		vals = append(vals, float32(r.NormFloat64()*math.Pow(2, float64(r.IntN(80)-40))))
	}
	s := NewStats()
	s.Add(vals)
	var bad, over, flush, sub, n int64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		a := math.Abs(float64(v))
		switch {
		case math.IsNaN(a) || math.IsInf(a, 0):
			bad++
			continue
		case a > 65504:
			over++
		case a > 0 && a < 0x1p-25:
			flush++
		case a >= 0x1p-25 && a < 0x1p-14:
			sub++
		}
		n++
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	if s.NonFinite != bad || s.Over16 != over || s.Flush16 != flush || s.Sub16 != sub || s.Count != n || s.Min != lo || s.Max != hi {
		t.Fatalf("Add: nonfinite %d over %d flush %d sub %d count %d [%v, %v]; want %d %d %d %d %d [%v, %v]",
			s.NonFinite, s.Over16, s.Flush16, s.Sub16, s.Count, s.Min, s.Max, bad, over, flush, sub, n, lo, hi)
	}
}
