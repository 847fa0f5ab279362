package verify

import (
	"math"
	"slices"
)

// z95 is the standard normal quantile of 0.975: the two-sided 95% interval.
const z95 = 1.959963984540054

// Interval is a proportion measured on Trials samples with its 95% Wilson
// score interval. The Wilson interval stays inside [0, 1] and, unlike the
// normal approximation, does not collapse to a point at 0 or N successes:
// 16 of 16 agreeing samples give [0.806, 1], not [1, 1].
type Interval struct {
	Successes int     `json:"successes"`
	Trials    int     `json:"trials"`
	Estimate  float64 `json:"estimate"`
	Lower     float64 `json:"lower"`
	Upper     float64 `json:"upper"`
	// Method is "wilson-95".
	Method string `json:"method"`
}

// Wilson returns the 95% Wilson score interval of k successes in n trials:
//
//	(p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)
//
// with z = 1.95996. n = 0 gives [0, 1].
func Wilson(k, n int) Interval {
	iv := Interval{Successes: k, Trials: n, Method: "wilson-95", Upper: 1}
	if n <= 0 {
		return iv
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	z2 := z95 * z95
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	iv.Estimate = p
	iv.Lower = math.Max(0, centre-half)
	iv.Upper = math.Min(1, centre+half)
	// At k = 0 or k = n the bound is exactly 0 or 1; rounding in the
	// formula must not move it.
	if k == 0 {
		iv.Lower = 0
	}
	if k == n {
		iv.Upper = 1
	}
	return iv
}

// KLPercentiles summarises the per-sample KL divergence KL(baseline ‖
// candidate) in nats, as llama.cpp's --kl-divergence does: the median, the
// 99th and 99.9th percentiles and the maximum. Percentiles are nearest-rank
// (the smallest sample that at least that share of samples does not
// exceed), as for latencies: every figure is a sample that occurred.
type KLPercentiles struct {
	Samples int     `json:"samples"`
	Median  float64 `json:"median"`
	P99     float64 `json:"p99"`
	P999    float64 `json:"p99_9"`
	Max     float64 `json:"max"`
}

// NewKLPercentiles computes the percentiles of kls (not modified); nil for
// no samples.
func NewKLPercentiles(kls []float64) *KLPercentiles {
	if len(kls) == 0 {
		return nil
	}
	s := slices.Clone(kls)
	slices.Sort(s)
	rank := func(permille int) float64 {
		r := (permille*len(s) + 999) / 1000 // ceil(permille/1000 · N)
		return s[max(r, 1)-1]
	}
	return &KLPercentiles{Samples: len(s), Median: rank(500), P99: rank(990), P999: rank(999), Max: s[len(s)-1]}
}

// LatencySpread is how much one model's p50 moved across the alternating
// timing blocks of a run (see timePair): the noise of that run's figure on
// that machine. SpreadPct is (max − min of the block p50s) / overall p50,
// in percent.
type LatencySpread struct {
	Model     string    `json:"model"` // "baseline" or "candidate"
	Batch     int       `json:"batch"`
	P50       float64   `json:"p50_ms"`
	BlockP50  []float64 `json:"block_p50_ms"`
	SpreadPct float64   `json:"spread_pct"`
}

func newLatencySpread(model string, batch int, p50 float64, blocks []float64) LatencySpread {
	s := LatencySpread{Model: model, Batch: batch, P50: p50, BlockP50: blocks}
	if len(blocks) > 0 && p50 > 0 {
		s.SpreadPct = 100 * (slices.Max(blocks) - slices.Min(blocks)) / p50
	}
	return s
}

// Statistics are the run's figures with their uncertainty.
type Statistics struct {
	// Top1Agreement is the share of samples on which the candidate's top
	// class equals the baseline's; null for embeddings.
	Top1Agreement *Interval `json:"top1_agreement"`
	// BaselineAccuracy and CandidateAccuracy are labelled top-1 accuracy;
	// null without labels.
	BaselineAccuracy  *Interval `json:"baseline_accuracy"`
	CandidateAccuracy *Interval `json:"candidate_accuracy"`
	// KLDivergence is per-sample KL(baseline ‖ candidate); null for
	// embeddings.
	KLDivergence *KLPercentiles `json:"kl_divergence"`
	// Latency is each model's p50 spread per batch size.
	Latency []LatencySpread `json:"latency"`
}

// countOf recovers a success count from a fraction of n (exact: the
// fraction was count/n).
func countOf(frac float64, n int) int { return int(math.Round(frac * float64(n))) }

// statistics derives Statistics from the report's figures, the per-sample
// KL values and the timing blocks' medians.
func statistics(r *Report, kls []float64, blocks map[string][][]float64) *Statistics {
	s := &Statistics{KLDivergence: NewKLPercentiles(kls)}
	a := r.Agreement
	if a.Top1 != nil {
		iv := Wilson(countOf(*a.Top1, a.Samples), a.Samples)
		s.Top1Agreement = &iv
	}
	if acc := r.Accuracy; acc != nil {
		b, c := Wilson(countOf(acc.BaselineTop1, acc.Samples), acc.Samples), Wilson(countOf(acc.CandidateTop1, acc.Samples), acc.Samples)
		s.BaselineAccuracy, s.CandidateAccuracy = &b, &c
	}
	for _, m := range []struct {
		name string
		rep  *ModelReport
	}{{"baseline", &r.Baseline}, {"candidate", &r.Candidate}} {
		for i, b := range m.rep.Batches {
			var bl []float64
			if i < len(blocks[m.name]) {
				bl = blocks[m.name][i]
			}
			s.Latency = append(s.Latency, newLatencySpread(m.name, b.Batch, b.LatencyMs.P50, bl))
		}
	}
	return s
}

// spreadOf returns the candidate's (or baseline's) spread at a batch size.
func (s *Statistics) spreadOf(model string, batch int) (LatencySpread, bool) {
	if s == nil {
		return LatencySpread{}, false
	}
	for _, l := range s.Latency {
		if l.Model == model && l.Batch == batch {
			return l, true
		}
	}
	return LatencySpread{}, false
}

// top1DropBound is the --max-top1-drop figure judged on the interval's
// pessimistic bound (--gate-on-bound), in percentage points: with labels,
// the baseline's measured accuracy minus the lower bound of the
// candidate's; without, 100·(1 − the lower bound of top-1 agreement). ok is
// false when neither was measured.
func (s *Statistics) top1DropBound(r *Report) (drop float64, what string, ok bool) {
	switch {
	case s == nil:
		return 0, "", false
	case r.Accuracy != nil && s.CandidateAccuracy != nil:
		return 100 * (r.Accuracy.BaselineTop1 - s.CandidateAccuracy.Lower),
			"labelled top-1 accuracy drop at the candidate's 95% lower bound", true
	case s.Top1Agreement != nil:
		return 100 * (1 - s.Top1Agreement.Lower), "top-1 disagreement at agreement's 95% lower bound, no labels", true
	}
	return 0, "", false
}
