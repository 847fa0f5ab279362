package verify

import (
	"math"
	"testing"
)

// wilsonRef finds the Wilson interval independently of the closed form:
// its bounds are the proportions p at which the score statistic
// |p̂ − p| / sqrt(p(1−p)/n) equals z, found by bisection in float64 on each
// side of p̂.
func wilsonRef(k, n int) (lo, hi float64) {
	ph := float64(k) / float64(n)
	f := func(p float64) float64 { return (ph-p)*(ph-p) - z95*z95*p*(1-p)/float64(n) }
	bisect := func(a, b float64) float64 { // f(a) > 0 ≥ f(b) or the reverse
		fa := f(a)
		for range 200 {
			m := (a + b) / 2
			if (f(m) > 0) == (fa > 0) {
				a, fa = m, f(m)
			} else {
				b = m
			}
		}
		return (a + b) / 2
	}
	lo, hi = 0, 1
	if k > 0 {
		lo = bisect(0, ph)
	}
	if k < n {
		hi = bisect(1, ph)
	}
	return lo, hi
}

func TestWilsonAgainstReference(t *testing.T) {
	for _, c := range [][2]int{{0, 1}, {1, 1}, {0, 16}, {16, 16}, {15, 16}, {8, 16}, {1, 3}, {97, 100}, {4990, 5000}, {12, 50000}} {
		k, n := c[0], c[1]
		iv := Wilson(k, n)
		lo, hi := wilsonRef(k, n)
		// Bisection to 2^-200 and the closed form agree to rounding: 1e-12
		// is far above both errors and far below any printed digit.
		if math.Abs(iv.Lower-lo) > 1e-12 || math.Abs(iv.Upper-hi) > 1e-12 {
			t.Errorf("Wilson(%d,%d) = [%.15f, %.15f], reference [%.15f, %.15f]", k, n, iv.Lower, iv.Upper, lo, hi)
		}
		if iv.Estimate != float64(k)/float64(n) || iv.Lower > iv.Estimate || iv.Upper < iv.Estimate {
			t.Errorf("Wilson(%d,%d) = %+v", k, n, iv)
		}
	}
	// 16 of 16 cannot claim better than 80.6% at 95%.
	if iv := Wilson(16, 16); math.Abs(iv.Lower-16/(16+z95*z95)) > 1e-12 {
		t.Errorf("16/16 lower bound %v, want n/(n+z²) = %v", iv.Lower, 16/(16+z95*z95))
	}
	if iv := Wilson(0, 0); iv.Lower != 0 || iv.Upper != 1 {
		t.Errorf("no trials: %+v", iv)
	}
}

func TestKLPercentiles(t *testing.T) {
	var kls []float64
	for i := 1000; i >= 1; i-- {
		kls = append(kls, float64(i)) // 1..1000, reversed: must sort
	}
	k := NewKLPercentiles(kls)
	if k.Samples != 1000 || k.Median != 500 || k.P99 != 990 || k.P999 != 999 || k.Max != 1000 {
		t.Fatalf("%+v", k)
	}
	if kls[0] != 1000 {
		t.Fatal("input modified")
	}
	if k := NewKLPercentiles([]float64{0.5}); k.Median != 0.5 || k.P999 != 0.5 || k.Max != 0.5 {
		t.Fatalf("one sample: %+v", k)
	}
	if NewKLPercentiles(nil) != nil {
		t.Fatal("no samples should give nil")
	}
}

// TestGateOnBound: 16 agreeing samples pass --max-top1-drop 1 on the point
// estimate but not on the interval's bound (disagreement up to 19.4 pp).
func TestGateOnBound(t *testing.T) {
	one := 1.0
	r := &Report{Agreement: Agreement{Kind: Logits, Samples: 16, Top1: &one}}
	r.Statistics = statistics(r, nil, nil)
	limit := 1.0
	Gates{MaxTop1Drop: &limit}.evaluate(r)
	if len(r.Gates.Failed) != 0 {
		t.Fatalf("point estimate: %q", r.Gates.Failed)
	}
	Gates{MaxTop1Drop: &limit, OnBound: true}.evaluate(r)
	if len(r.Gates.Failed) != 1 || GateName(r.Gates.Failed[0]) != "top1-drop" {
		t.Fatalf("on bound: failed %q passed %q", r.Gates.Failed, r.Gates.Passed)
	}
	limit = 20
	Gates{MaxTop1Drop: &limit, OnBound: true}.evaluate(r)
	if len(r.Gates.Failed) != 0 {
		t.Fatalf("on bound, 20 pp: %q", r.Gates.Failed)
	}
}
