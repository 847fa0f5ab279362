package quantize

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/quantpack/quantpack/verify"
)

// jitterRunner is a fake runtime: each run returns, for every tensor
// name, values derived from the input (with growth of the range from
// batch to batch, so histogram merges happen), after a random pause that
// perturbs how runs and folds interleave.
type jitterRunner struct {
	names []string
	r     *rand.Rand
	calls int
}

func (j *jitterRunner) Inputs() []verify.IOInfo  { return nil }
func (j *jitterRunner) Outputs() []verify.IOInfo { return nil }
func (j *jitterRunner) Close() error             { return nil }
func (j *jitterRunner) Run(ctx context.Context, in []verify.Tensor) ([]verify.Tensor, error) {
	time.Sleep(time.Duration(j.r.IntN(300)) * time.Microsecond)
	j.calls++
	var outs []verify.Tensor
	for k, name := range j.names {
		v := make([]float32, 4096)
		for i := range v {
			x := float64(in[0].F32[i%len(in[0].F32)])
			v[i] = float32(math.Sin(x*float64(i+k)) * math.Pow(2, float64(j.calls%7)) * (1 + float64(k)))
		}
		outs = append(outs, verify.Tensor{Name: name, DType: verify.Float32, Shape: []int64{1, 4096}, F32: v})
	}
	return outs, nil
}

// TestCollectDeterministic: statistics folded while the next batch runs
// do not depend on scheduling — one worker or many, runs and folds
// interleaved differently — down to every histogram bin.
func TestCollectDeterministic(t *testing.T) {
	m := tinySingle(1)
	p, err := NewPlan(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var batches [][]verify.Tensor
	for i := range 12 {
		batches = append(batches, tinyInputs(uint64(i), 3)[:1])
	}
	collect := func(procs int, seed uint64) map[string]*Stats {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		open := func([]byte, string) (verify.Runner, error) {
			return &jitterRunner{names: p.Tensors, r: rand.New(rand.NewPCG(seed, 1))}, nil
		}
		s, err := Collect(context.Background(), m, "", p.Tensors, open, &sliceSource{batches: batches})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := collect(1, 1)
	for _, c := range []struct {
		procs int
		seed  uint64
	}{{4, 2}, {8, 3}, {2, 4}} {
		got := collect(c.procs, c.seed)
		for _, name := range p.Tensors {
			a, b := want[name], got[name]
			if a.Count == 0 || a.Exp != b.Exp || a.Min != b.Min || a.Max != b.Max || a.Count != b.Count || !slices.Equal(a.Hist, b.Hist) {
				t.Fatalf("GOMAXPROCS %d: %s differs (count %d/%d, exp %d/%d)", c.procs, name, a.Count, b.Count, a.Exp, b.Exp)
			}
		}
	}
}
