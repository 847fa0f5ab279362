package verify

import (
	"fmt"
	"math"
)

// OutputKind says how a model output is compared.
type OutputKind string

const (
	// Logits are class scores: agreement of predictions, cosine, errors
	// and KL divergence of the softmax.
	Logits OutputKind = "logits"
	// Embedding is a feature vector (a pooled or CLS output): cosine and
	// errors only. Compare the pooled output or the CLS token (CLSToken),
	// not the whole last_hidden_state.
	Embedding OutputKind = "embedding"
)

// Agreement compares a candidate model's outputs with a baseline's on the
// same inputs. Everything is accumulated in float64.
//
// Definitions, per sample (one row of dim values):
//   - Top1: the candidate's argmax equals the baseline's.
//   - Top5: the baseline's argmax is among the candidate's five highest,
//     i.e. top-5 accuracy with the baseline's prediction as the label, the
//     usual reading of "top-5 agreement" (always ≥ Top1; with fewer than
//     five classes, all of them). Ties go to the lower class index.
//   - Cosine: dot(b,c)/(|b||c|); 1 when both are all zeros, 0 when one is.
//   - MaxAbs, MeanAbs: over every element of every sample.
//   - KL: KL(softmax(b) ‖ softmax(c)) = Σ p_b·(log p_b − log p_c) in nats,
//     from log-softmax with the max subtracted, so large logits do not
//     overflow; clamped at 0 against rounding.
//
// A sample with a NaN or ±Inf in either output cannot be measured; it is
// counted in NonFiniteSamples, scores cosine 0 and disagrees in Top1 and
// Top5, and stays out of MaxAbs, MeanAbs and KL. Gates on cosine or
// agreement therefore fail for it rather than pass on a NaN.
type Agreement struct {
	Kind    OutputKind `json:"kind"`
	Samples int        `json:"samples"`
	// Top1, Top5, KLMean and KLMax are fractions and nats; absent (nil) for
	// embeddings.
	Top1             *float64 `json:"top1,omitempty"`
	Top5             *float64 `json:"top5,omitempty"`
	CosineMean       float64  `json:"cosine_mean"`
	CosineMin        float64  `json:"cosine_min"`
	MaxAbs           float64  `json:"max_abs"`
	MeanAbs          float64  `json:"mean_abs"`
	KLMean           *float64 `json:"kl_mean,omitempty"`
	KLMax            *float64 `json:"kl_max,omitempty"`
	NonFiniteSamples int      `json:"non_finite_samples"`
}

// Comparer accumulates Agreement batch by batch.
type Comparer struct {
	kind       OutputKind
	dim        int
	n          int
	top1, top5 int
	cosSum     float64
	cosMin     float64
	maxAbs     float64
	absSum     float64
	absN       int64
	klSum      float64
	klMax      float64
	nonFinite  int
	lb, lc     []float64 // log-softmax scratch
	kls        []float64 // per-sample KL, for its percentiles
}

// NewComparer compares outputs of dim values per sample.
func NewComparer(kind OutputKind, dim int) (*Comparer, error) {
	if dim < 1 {
		return nil, fmt.Errorf("%w: dim %d", ErrShape, dim)
	}
	if kind != Logits && kind != Embedding {
		return nil, fmt.Errorf("verify: unknown output kind %q", kind)
	}
	c := &Comparer{kind: kind, dim: dim, cosMin: math.Inf(1)}
	if kind == Logits {
		c.lb, c.lc = make([]float64, dim), make([]float64, dim)
	}
	return c, nil
}

// Add takes one batch: baseline and candidate outputs of the same samples,
// row-major [N, dim].
func (c *Comparer) Add(baseline, candidate []float32) error {
	if len(baseline) != len(candidate) || len(baseline)%c.dim != 0 {
		return fmt.Errorf("%w: baseline %d and candidate %d values, dim %d", ErrShape, len(baseline), len(candidate), c.dim)
	}
	for off := 0; off < len(baseline); off += c.dim {
		c.addSample(baseline[off:off+c.dim], candidate[off:off+c.dim])
	}
	return nil
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

func (c *Comparer) addSample(b, x []float32) {
	c.n++
	if !finite(b) || !finite(x) {
		c.nonFinite++
		c.cosMin = math.Min(c.cosMin, 0)
		return
	}
	cos := Cosine(b, x)
	c.cosSum += cos
	c.cosMin = math.Min(c.cosMin, cos)
	for i := range b {
		d := math.Abs(float64(b[i]) - float64(x[i]))
		c.absSum += d
		c.maxAbs = math.Max(c.maxAbs, d)
	}
	c.absN += int64(len(b))
	if c.kind != Logits {
		return
	}
	want := argmax(b)
	if argmax(x) == want {
		c.top1++
	}
	if inTopK(x, want, 5) {
		c.top5++
	}
	kl := KLDivergence(b, x, c.lb, c.lc)
	c.klSum += kl
	c.klMax = math.Max(c.klMax, kl)
	c.kls = append(c.kls, kl)
}

// KLValues returns the per-sample KL divergences of the finite logit
// samples added so far, in order (shared, not copied).
func (c *Comparer) KLValues() []float64 { return c.kls }

// Result returns the metrics over every sample added so far.
func (c *Comparer) Result() Agreement {
	a := Agreement{Kind: c.kind, Samples: c.n, NonFiniteSamples: c.nonFinite}
	if c.n == 0 {
		return a
	}
	a.CosineMean = c.cosSum / float64(c.n) // non-finite samples add 0
	a.CosineMin = c.cosMin
	a.MaxAbs = c.maxAbs
	if c.absN > 0 {
		a.MeanAbs = c.absSum / float64(c.absN)
	}
	if c.kind == Logits {
		t1, t5 := float64(c.top1)/float64(c.n), float64(c.top5)/float64(c.n)
		a.Top1, a.Top5 = &t1, &t5
		if measured := c.n - c.nonFinite; measured > 0 {
			m, mx := c.klSum/float64(measured), c.klMax
			a.KLMean, a.KLMax = &m, &mx
		}
	}
	return a
}

// Cosine is the cosine similarity of a and b in float64: 1 when both are
// zero vectors, 0 when only one is.
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	switch {
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	return math.Max(-1, math.Min(1, dot/(math.Sqrt(na)*math.Sqrt(nb))))
}

// logSoftmax writes log(softmax(x)) into out in float64.
func logSoftmax(x []float32, out []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	for i, v := range x {
		out[i] = float64(v) - lse
	}
}

// KLDivergence is KL(softmax(p) ‖ softmax(q)) in nats for logits p and q.
// sp and sq are scratch slices of len(p) (nil allocates).
func KLDivergence(p, q []float32, sp, sq []float64) float64 {
	if len(sp) < len(p) {
		sp = make([]float64, len(p))
	}
	if len(sq) < len(q) {
		sq = make([]float64, len(q))
	}
	logSoftmax(p, sp)
	logSoftmax(q, sq)
	var kl float64
	for i := range p {
		kl += math.Exp(sp[i]) * (sp[i] - sq[i])
	}
	return math.Max(0, kl)
}

// argmax is the index of the largest value, the lowest index among equals
// (numpy's and torch's first-occurrence rule). NaN never wins.
func argmax(x []float32) int {
	best := -1
	for i, v := range x {
		if math.IsNaN(float64(v)) {
			continue
		}
		if best < 0 || v > x[best] {
			best = i
		}
	}
	return max(best, 0)
}

// inTopK reports whether class want is among the k highest values of x
// (ties to the lower index): fewer than k classes rank above it.
func inTopK(x []float32, want, k int) bool {
	if want < 0 || want >= len(x) || math.IsNaN(float64(x[want])) {
		return false
	}
	v := x[want]
	above := 0
	for i, u := range x {
		if u > v || (u == v && i < want) {
			above++
		}
	}
	return above < k
}

// Accuracy counts correct predictions against labels.
type Accuracy struct {
	Samples     int `json:"samples"`
	Top1Correct int `json:"top1_correct"`
	Top5Correct int `json:"top5_correct"`
}

// Add scores one batch of logits [N, dim] against labels (len N); a label
// of -1 (unknown) is skipped. A row with NaN or Inf counts as wrong.
func (a *Accuracy) Add(logits []float32, dim int, labels []int) error {
	if dim < 1 || len(logits) != len(labels)*dim {
		return fmt.Errorf("%w: %d logits for %d labels of dim %d", ErrShape, len(logits), len(labels), dim)
	}
	for i, l := range labels {
		if l < 0 {
			continue
		}
		if l >= dim {
			// A dataset's label past the model's classes is the input's
			// fault (a labels file for another model), not a program bug.
			return fmt.Errorf("%w: label %d but the model outputs %d classes", ErrBadDataset, l, dim)
		}
		row := logits[i*dim : (i+1)*dim]
		a.Samples++
		if !finite(row) {
			continue
		}
		if argmax(row) == l {
			a.Top1Correct++
		}
		if inTopK(row, l, 5) {
			a.Top5Correct++
		}
	}
	return nil
}

// Top1 is the top-1 accuracy as a fraction (0 with no samples).
func (a Accuracy) Top1() float64 { return ratio(a.Top1Correct, a.Samples) }

// Top5 is the top-5 accuracy as a fraction.
func (a Accuracy) Top5() float64 { return ratio(a.Top5Correct, a.Samples) }

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// AccuracyReport sets a candidate's labelled accuracy beside the
// baseline's. Accuracies are fractions; drops are percentage points
// (baseline − candidate, ×100), positive when the candidate is worse,
// which is what --max-top1-drop compares with.
type AccuracyReport struct {
	Samples       int     `json:"samples"`
	BaselineTop1  float64 `json:"baseline_top1"`
	CandidateTop1 float64 `json:"candidate_top1"`
	BaselineTop5  float64 `json:"baseline_top5"`
	CandidateTop5 float64 `json:"candidate_top5"`
	Drop          float64 `json:"drop"`
	DropTop5      float64 `json:"drop_top5"`
}

// CompareAccuracy reports baseline against candidate; both must have
// scored the same samples.
func CompareAccuracy(baseline, candidate Accuracy) (AccuracyReport, error) {
	if baseline.Samples != candidate.Samples {
		return AccuracyReport{}, fmt.Errorf("%w: baseline scored %d samples, candidate %d", ErrShape, baseline.Samples, candidate.Samples)
	}
	r := AccuracyReport{
		Samples:      baseline.Samples,
		BaselineTop1: baseline.Top1(), CandidateTop1: candidate.Top1(),
		BaselineTop5: baseline.Top5(), CandidateTop5: candidate.Top5(),
	}
	// From the counts, so that equal accuracies give exactly 0.
	r.Drop = 100 * float64(baseline.Top1Correct-candidate.Top1Correct) / float64(max(r.Samples, 1))
	r.DropTop5 = 100 * float64(baseline.Top5Correct-candidate.Top5Correct) / float64(max(r.Samples, 1))
	return r, nil
}

// CLSToken copies token 0 of each sample of a [N, tokens, dim] hidden state
// into a [N, dim] slice: the output to compare for ViTModel and Dinov2Model
// when no pooled output is used.
func CLSToken(hidden []float32, tokens, dim int) ([]float32, error) {
	if tokens < 1 || dim < 1 || len(hidden)%(tokens*dim) != 0 {
		return nil, fmt.Errorf("%w: %d values as [N, %d, %d]", ErrShape, len(hidden), tokens, dim)
	}
	n := len(hidden) / (tokens * dim)
	out := make([]float32, n*dim)
	for i := range n {
		copy(out[i*dim:(i+1)*dim], hidden[i*tokens*dim:i*tokens*dim+dim])
	}
	return out, nil
}
