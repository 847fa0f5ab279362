package verify

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestComparerHandComputed checks every metric against closed forms. The
// tolerance 1e-12 is float64 rounding of sums of a few terms; inputs are
// small integers, exact in float32.
func TestComparerHandComputed(t *testing.T) {
	c, err := NewComparer(Logits, 3)
	if err != nil {
		t.Fatal(err)
	}
	base := []float32{1, 2, 3, 4, 5, 6}
	cand := []float32{1, 3, 2, 4, 5, 6}
	if err := c.Add(base, cand); err != nil {
		t.Fatal(err)
	}
	a := c.Result()
	e, e2, e3 := math.E, math.Exp(2), math.Exp(3)
	// Sample 0 is a permutation of the same logits, so the softmax
	// normalisers cancel: KL = Σ p_i (b_i − c_i) = p_3 − p_2.
	kl0 := (e3 - e2) / (e + e2 + e3)
	cos0 := 13.0 / 14.0
	checks := []struct {
		name      string
		got, want float64
	}{
		{"top1", *a.Top1, 0.5},
		{"top5", *a.Top5, 1},
		{"cosine_mean", a.CosineMean, (cos0 + 1) / 2},
		{"cosine_min", a.CosineMin, cos0},
		{"max_abs", a.MaxAbs, 1},
		{"mean_abs", a.MeanAbs, 2.0 / 6.0},
		{"kl_mean", *a.KLMean, kl0 / 2},
		{"kl_max", *a.KLMax, kl0},
	}
	for _, ch := range checks {
		if !near(ch.got, ch.want, 1e-12) {
			t.Errorf("%s = %.15g, want %.15g", ch.name, ch.got, ch.want)
		}
	}
	if a.Samples != 2 || a.NonFiniteSamples != 0 || a.Kind != Logits {
		t.Errorf("%+v", a)
	}
}

func TestKLLargeLogitsStable(t *testing.T) {
	// softmax([1000,0]) is one-hot to float64 precision; KL to its mirror is
	// 1000 nats (log p0 − log q0 = 0 − (−1000)). A naive exp overflows.
	kl := KLDivergence([]float32{1000, 0}, []float32{0, 1000}, nil, nil)
	if !near(kl, 1000, 1e-9) {
		t.Errorf("KL = %v, want 1000", kl)
	}
	if kl := KLDivergence([]float32{-1e30, 5, 5}, []float32{-1e30, 5, 5}, nil, nil); kl != 0 {
		t.Errorf("identical extreme logits: KL %v", kl)
	}
}

func TestComparerIdenticalProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const dim = 1000
	x := make([]float32, 16*dim)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 4)
	}
	c, _ := NewComparer(Logits, dim)
	c.Add(x, x)
	a := c.Result()
	if *a.Top1 != 1 || *a.Top5 != 1 || a.MaxAbs != 0 || a.MeanAbs != 0 || *a.KLMean != 0 || *a.KLMax != 0 {
		t.Errorf("identical outputs: %+v", a)
	}
	// Cosine of identical non-zero vectors is 1 up to float64 rounding of
	// a 1000-term dot product and two square roots.
	if !near(a.CosineMin, 1, 1e-12) || !near(a.CosineMean, 1, 1e-12) {
		t.Errorf("cosine %v %v", a.CosineMin, a.CosineMean)
	}
	// Scaling the candidate changes errors but not the cosine.
	y := make([]float32, len(x))
	for i := range x {
		y[i] = 2 * x[i]
	}
	c2, _ := NewComparer(Embedding, dim)
	c2.Add(x, y)
	b := c2.Result()
	if !near(b.CosineMin, 1, 1e-12) || b.Top1 != nil || b.KLMean != nil || b.MaxAbs == 0 {
		t.Errorf("embedding of 2x: %+v", b)
	}
}

func TestTopKRules(t *testing.T) {
	// Baseline's argmax is class 7 (value 10).
	base := []float32{0, 0, 0, 0, 0, 0, 0, 10, 0, 0}
	cand := []float32{9, 9, 9, 9, 9, 0, 0, 8, 0, 0} // five classes above 7
	if inTopK(cand, argmax(base), 5) {
		t.Error("five higher classes: still counted in top 5")
	}
	cand[4] = 8 // tie with class 7 at a lower index ranks above it
	if inTopK(cand, 7, 5) {
		t.Error("tie at lower index should rank above")
	}
	cand[4] = 7
	if !inTopK(cand, 7, 5) {
		t.Error("four higher classes: not in top 5")
	}
	if argmax([]float32{3, 5, 5, 1}) != 1 {
		t.Error("argmax tie must pick the first")
	}
	if argmax([]float32{float32(math.NaN()), 2, 1}) != 1 {
		t.Error("NaN must not win argmax")
	}
	if !inTopK([]float32{1, 2}, 0, 5) {
		t.Error("with fewer than k classes every class is in the top k")
	}
}

func TestComparerNonFinite(t *testing.T) {
	c, _ := NewComparer(Logits, 2)
	c.Add([]float32{1, 2, 3, 4}, []float32{1, 2, float32(math.NaN()), 4})
	a := c.Result()
	if a.NonFiniteSamples != 1 || a.CosineMin != 0 || *a.Top1 != 0.5 || *a.Top5 != 0.5 || !near(a.CosineMean, 0.5, 1e-15) {
		t.Errorf("%+v", a)
	}
	if a.MaxAbs != 0 || *a.KLMean != 0 {
		t.Errorf("non-finite sample leaked into errors: %+v", a)
	}
	// The result must always encode: encoding/json rejects NaN and Inf.
	if _, err := json.Marshal(a); err != nil {
		t.Error(err)
	}
	if err := c.Add([]float32{1}, []float32{1, 2}); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, err := NewComparer(Logits, 0); err == nil {
		t.Error("dim 0 accepted")
	}
}

func TestAccuracy(t *testing.T) {
	logits := []float32{
		9, 1, 1, 1, 1, 1, 1, // label 0: top-1 right
		1, 9, 8, 7, 6, 5, 1, // label 5: 5th highest → top-5 right, top-1 wrong
		1, 9, 8, 7, 6, 5, 1, // label 6: outside top 5
		1, 1, 1, 1, 1, 1, 1, // label -1: skipped
	}
	var a Accuracy
	if err := a.Add(logits, 7, []int{0, 5, 6, -1}); err != nil {
		t.Fatal(err)
	}
	if a.Samples != 3 || a.Top1Correct != 1 || a.Top5Correct != 2 {
		t.Errorf("%+v", a)
	}
	var b Accuracy
	b.Add(logits[:7*3], 7, []int{1, 1, 6})
	r, err := CompareAccuracy(a, b)
	if err != nil {
		t.Fatal(err)
	}
	// a: 1 of 3 right; b: argmaxes 0,1,1 against labels 1,1,6, also 1 of 3.
	if r.Drop != 0 || !near(r.BaselineTop1, 1.0/3, 1e-15) {
		t.Errorf("%+v", r)
	}
	c := Accuracy{Samples: 200, Top1Correct: 150, Top5Correct: 190}
	d := Accuracy{Samples: 200, Top1Correct: 147, Top5Correct: 190}
	r, _ = CompareAccuracy(c, d)
	if !near(r.Drop, 1.5, 1e-12) || r.DropTop5 != 0 {
		t.Errorf("drop %v pp, want 1.5", r.Drop)
	}
	if _, err := CompareAccuracy(c, Accuracy{Samples: 3}); err == nil {
		t.Error("different sample counts accepted")
	}
	if err := a.Add(logits[:7], 7, []int{7}); err == nil {
		t.Error("label out of range accepted")
	}
}

func TestCLSToken(t *testing.T) {
	h := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} // [2, 3, 2]
	got, err := CLSToken(h, 3, 2)
	if err != nil || len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 7 || got[3] != 8 {
		t.Errorf("%v %v", got, err)
	}
	if _, err := CLSToken(h, 5, 2); err == nil {
		t.Error("bad shape accepted")
	}
	if Cosine([]float32{0, 0}, []float32{0, 0}) != 1 || Cosine([]float32{0, 0}, []float32{1, 0}) != 0 {
		t.Error("zero-vector cosine rules")
	}
}
