package verify

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// fakeRunner is a deterministic model: output k of sample n is
// scale · Σ_i x[n,i]·sin(i·(k+1)) (+ extra tokens for hidden states), so
// two fakes with scales a and b give outputs in exact ratio a/b.
type fakeRunner struct {
	input   IOInfo
	outputs []IOInfo
	dim     int
	scale   float32
	tokens  int // >0: output is [N, tokens, dim] last_hidden_state
	// noise is added to tokens after the first (not to the CLS token).
	noise float32

	mu      sync.Mutex
	batches map[int]int // runs per batch size
	zeros   bool        // a run saw an all-zero sample
	closed  bool
}

func newFake(size int, out string, dim int, scale float32) *fakeRunner {
	f := &fakeRunner{
		input: IOInfo{Name: "pixel_values", DType: Float32, Shape: []int64{-1, 3, int64(size), int64(size)}},
		dim:   dim, scale: scale, batches: map[int]int{},
	}
	f.outputs = []IOInfo{{Name: out, DType: Float32, Shape: []int64{-1, int64(dim)}}}
	return f
}

func (f *fakeRunner) Inputs() []IOInfo  { return []IOInfo{f.input} }
func (f *fakeRunner) Outputs() []IOInfo { return f.outputs }
func (f *fakeRunner) Close() error      { f.closed = true; return nil }

func (f *fakeRunner) Run(ctx context.Context, in []Tensor) ([]Tensor, error) {
	if len(in) != 1 || in[0].Name != f.input.Name {
		return nil, errors.New("fake: wrong inputs")
	}
	x := in[0]
	n := int(x.Shape[0])
	per := len(x.F32) / n
	f.mu.Lock()
	f.batches[n]++
	f.mu.Unlock()
	tokens := max(f.tokens, 1)
	out := make([]float32, n*tokens*f.dim)
	for s := range n {
		row := x.F32[s*per : (s+1)*per]
		allZero := true
		for _, v := range row {
			if v != 0 {
				allZero = false
				break
			}
		}
		if allZero {
			f.mu.Lock()
			f.zeros = true
			f.mu.Unlock()
		}
		for k := range f.dim {
			var acc float64
			for i, v := range row {
				acc += float64(v) * math.Sin(float64(i*(k+1)))
			}
			base := (s*tokens)*f.dim + k
			out[base] = f.scale * float32(acc/float64(per))
			for t := 1; t < tokens; t++ {
				out[base+t*f.dim] = out[base] + f.noise*float32(t)
			}
		}
	}
	shape := []int64{int64(n), int64(f.dim)}
	if f.tokens > 0 {
		shape = []int64{int64(n), int64(tokens), int64(f.dim)}
	}
	return []Tensor{{Name: f.outputs[0].Name, DType: Float32, Shape: shape, F32: out}}, nil
}

// fakeModels writes two export directories (config.json of a 16×16 ViT
// and a dummy model.onnx of the given sizes) and returns their paths.
func fakeModels(t *testing.T, baseBytes, candBytes int) (string, string) {
	t.Helper()
	root := t.TempDir()
	var dirs []string
	for i, n := range []int{baseBytes, candBytes} {
		d := filepath.Join(root, []string{"base", "cand"}[i])
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := `{"model_type":"vit","image_size":16,"id2label":{"0":"a","1":"b","2":"c","3":"d","4":"e","5":"f"}}`
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, ModelFile), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs[0], dirs[1]
}

// openFakes returns an Opener that hands out base for the first path and
// cand for the second.
func openFakes(baseDir string, base, cand Runner) Opener {
	return func(p string) (Runner, error) {
		if filepath.Dir(p) == baseDir {
			return base, nil
		}
		return cand, nil
	}
}

func TestCompareScaledCandidate(t *testing.T) {
	bdir, cdir := fakeModels(t, 4000, 1000)
	base, cand := newFake(16, "logits", 6, 1), newFake(16, "logits", 6, 2)
	rep, err := Compare(context.Background(), Options{
		Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Open: openFakes(bdir, base, cand), BatchSizes: []int{2, 3}, Warmup: 2, Iters: 5, Device: "cpu"},
		Inputs:  Inputs{Samples: 7},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Agreement
	// The candidate's logits are exactly 2× the baseline's: same argmax and
	// ranking, cosine 1 up to float64 rounding of float32 values.
	if a.Samples != 7 || *a.Top1 != 1 || *a.Top5 != 1 || a.CosineMin < 1-1e-12 {
		t.Fatalf("agreement %+v", a)
	}
	if a.MaxAbs <= 0 || *a.KLMean <= 0 {
		t.Fatalf("scaled logits should differ: max_abs %g, kl %g", a.MaxAbs, *a.KLMean)
	}
	if rep.SizeRatio != 0.25 {
		t.Fatalf("size ratio %g, want 0.25", rep.SizeRatio)
	}
	if rep.Inputs.Kind != "synthetic" || rep.Inputs.Used != 7 || rep.Accuracy != nil {
		t.Fatalf("inputs %+v, accuracy %v", rep.Inputs, rep.Accuracy)
	}
	// Comparison pass at batch 2: 7 samples → runs of 2,2,2,1. Timing:
	// warmup+iters at each batch size.
	for _, f := range []*fakeRunner{base, cand} {
		if f.batches[1] != 1 || f.batches[2] != 3+2+5 || f.batches[3] != 2+5 {
			t.Fatalf("runs per batch size %v", f.batches)
		}
		if f.zeros {
			t.Fatal("a model was run on an all-zero sample")
		}
		if !f.closed {
			t.Fatal("runner not closed")
		}
	}
	if len(rep.Baseline.Batches) != 2 || rep.Baseline.Batches[1].Batch != 3 || rep.Baseline.Batches[1].LatencyMs.Runs != 5 {
		t.Fatalf("batches %+v", rep.Baseline.Batches)
	}
	if rep.Baseline.LatencyMs != rep.Baseline.Batches[0].LatencyMs || rep.Speedup <= 0 {
		t.Fatalf("headline latency %+v, speedup %g", rep.Baseline.LatencyMs, rep.Speedup)
	}
	if rep.Provenance.BaselineSHA256 == "" || rep.Provenance.BaselineSHA256 == rep.Provenance.CandidateSHA256 {
		t.Fatalf("hashes %q %q", rep.Provenance.BaselineSHA256, rep.Provenance.CandidateSHA256)
	}
}

func TestCompareNegatedCandidateFailsGates(t *testing.T) {
	bdir, cdir := fakeModels(t, 100, 100)
	base, cand := newFake(16, "logits", 6, 1), newFake(16, "logits", 6, -1)
	minCos, maxDrop, maxRatio := 0.5, 10.0, 1.0
	rep, err := Compare(context.Background(), Options{
		Baseline: bdir, Candidate: cdir, Runtime: Runtime{Open: openFakes(bdir, base, cand), Iters: 2}, Inputs: Inputs{Samples: 5},
		Gates: Gates{MinCosine: &minCos, MaxTop1Drop: &maxDrop, MaxSizeRatio: &maxRatio},
	})
	var ge *GateError
	if !errors.As(err, &ge) || !errors.Is(err, fault.ErrGate) || fault.ClassOf(err) != fault.Gate {
		t.Fatalf("err %v, want a GateError", err)
	}
	// Negated logits: cosine exactly -1, argmax becomes the argmin.
	if uniformCosine(rep.Agreement) != -1 || *rep.Agreement.Top1 != 0 {
		t.Fatalf("agreement %+v", rep.Agreement)
	}
	if len(ge.Failed) != 2 || len(rep.Gates.Failed) != 2 || len(rep.Gates.Passed) != 1 {
		t.Fatalf("failed %q passed %q", rep.Gates.Failed, rep.Gates.Passed)
	}
}

// uniformCosine returns the cosine shared by every sample (mean equal to
// min), rounded to 9 digits, or NaN when they differ.
func uniformCosine(a Agreement) float64 {
	if math.Abs(a.CosineMean-a.CosineMin) > 1e-12 {
		return math.NaN()
	}
	return math.Round(a.CosineMin*1e9) / 1e9
}

func TestCompareEmbeddings(t *testing.T) {
	bdir, cdir := fakeModels(t, 10, 10)
	// last_hidden_state: only the CLS token is compared, so noise on the
	// other tokens must not show.
	base, cand := newFake(16, "last_hidden_state", 8, 1), newFake(16, "last_hidden_state", 8, 1)
	for _, f := range []*fakeRunner{base, cand} {
		f.tokens = 5
		f.outputs[0].Shape = []int64{-1, 5, 8}
	}
	cand.noise = 3
	maxDrop := 1.0
	rep, err := Compare(context.Background(), Options{
		Baseline: bdir, Candidate: cdir, Runtime: Runtime{Open: openFakes(bdir, base, cand), Iters: 1}, Inputs: Inputs{Samples: 3},
		Gates: Gates{MaxTop1Drop: &maxDrop},
	})
	if !errors.Is(err, fault.ErrGate) {
		t.Fatalf("top-1 gate on embeddings should fail as unmeasurable, got %v", err)
	}
	a := rep.Agreement
	if a.Kind != Embedding || a.Top1 != nil || a.CosineMin != 1 || a.MaxAbs != 0 {
		t.Fatalf("agreement %+v", a)
	}
}

func TestCompareMismatch(t *testing.T) {
	bdir, cdir := fakeModels(t, 10, 10)
	cases := []struct {
		name string
		cand *fakeRunner
		want error
	}{
		{"input size", newFake(32, "logits", 6, 1), ErrMismatch},
		{"no common output", newFake(16, "scores", 6, 1), ErrMismatch},
	}
	for _, c := range cases {
		_, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
			Runtime: Runtime{Iters: 1, Open: openFakes(bdir, newFake(16, "logits", 6, 1), c.cand)}})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	two := newFake(16, "logits", 6, 1)
	_, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Iters: 1, Open: openFakes(bdir, newFake(16, "logits", 6, 1), &twoInputs{two})}})
	if !errors.Is(err, ErrModelIO) || fault.ClassOf(err) != fault.Unsupported {
		t.Errorf("two inputs: err %v", err)
	}
	if _, err := Compare(context.Background(), Options{Baseline: filepath.Join(bdir, "config.json"), Candidate: cdir,
		Runtime: Runtime{Open: openFakes(bdir, nil, nil)}}); !errors.Is(err, ErrModelPath) {
		t.Errorf("non-onnx file: err %v", err)
	}
}

type twoInputs struct{ *fakeRunner }

func (t *twoInputs) Inputs() []IOInfo { return []IOInfo{t.input, t.input} }

func TestCompareMemory(t *testing.T) {
	bdir, cdir := fakeModels(t, 10, 10)
	calls := map[string]int{}
	probe := func(_ context.Context, model string, batch int) (ChildMemory, error) {
		calls[filepath.Base(filepath.Dir(model))]++
		if model == "" {
			return ChildMemory{PeakBytes: 50 << 20, SelfReported: true}, nil
		}
		return ChildMemory{PeakBytes: int64(50+batch) << 20, SelfReported: true}, nil
	}
	rep, err := Compare(context.Background(), Options{Baseline: bdir, Candidate: cdir,
		Runtime: Runtime{Iters: 1, BatchSizes: []int{1, 4}, Open: openFakes(bdir, newFake(16, "logits", 6, 1), newFake(16, "logits", 6, 1)), Memory: probe}})
	if err != nil {
		t.Fatal(err)
	}
	if *rep.Memory.RuntimeRSSMB != 50 || rep.Memory.Method != "child-vmhwm" {
		t.Fatalf("memory %+v", rep.Memory)
	}
	got := rep.Candidate.Batches[1]
	if *got.PeakRSSMB != 4 || *got.PeakRSSTotalMB != 54 || *rep.Baseline.PeakRSSMB != 1 {
		t.Fatalf("batch memory %+v / headline %v", got, *rep.Baseline.PeakRSSMB)
	}
	if calls["base"] != 2 || calls["cand"] != 2 || calls["."] != 1 {
		t.Fatalf("probe calls %v", calls)
	}
}

func TestGatesEvaluate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	top1 := 0.98
	r := Report{
		Agreement: Agreement{Top1: &top1, CosineMin: math.NaN()},
		Candidate: ModelReport{Batches: []BatchReport{{Batch: 1, LatencyMs: LatencyStats{P50: 5}}, {Batch: 8, LatencyMs: LatencyStats{P50: 30}}}},
		Speedup:   1.5, SizeRatio: 0.3,
	}
	Gates{MaxTop1Drop: f(2), MinCosine: f(0.9), MaxLatencyMs: f(10), MinSpeedup: f(1.5), MaxSizeRatio: f(0.27)}.evaluate(&r)
	// Passed: top-1 disagreement 2 pp ≤ 2, latency at batch 1, speedup
	// 1.5 ≥ 1.5. Failed: NaN cosine, latency at batch 8, size 0.3.
	if len(r.Gates.Passed) != 3 || len(r.Gates.Failed) != 3 {
		t.Fatalf("passed %q\nfailed %q", r.Gates.Passed, r.Gates.Failed)
	}
	r.Accuracy = &AccuracyReport{Drop: 2.5}
	Gates{MaxTop1Drop: f(2)}.evaluate(&r)
	if len(r.Gates.Failed) != 1 {
		t.Fatalf("labelled drop 2.5 > 2 should fail: %q", r.Gates.Passed)
	}
	Gates{}.evaluate(&r)
	if r.Gates.Passed == nil || r.Gates.Failed == nil || len(r.Gates.Passed)+len(r.Gates.Failed) != 0 {
		t.Fatal("no gates: want empty, non-nil lists")
	}
}
