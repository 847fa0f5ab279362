package tune

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/verify"
)

// maxActivationBytes caps the FP32 activations kept for reuse. Past it,
// cuts are thinned (every other one dropped, the latest kept) and layers
// fall back to an earlier cut: slower, never wrong.
const maxActivationBytes = 1 << 30

// activation is the FP32 value at one cut for every input, [N, dims...].
type activation struct {
	name string
	dims []int64 // per sample
	data []float32
}

// reuse maps layers to stored FP32 activations at their cut.
type reuse struct {
	byLayer map[string]*activation
}

// newReuse runs the FP32 graph once with the cut values as extra outputs
// and keeps them.
func newReuse(ctx context.Context, v *convert.Variants, e *evaluator) (*reuse, error) {
	cuts, pos, err := v.Cuts()
	if err != nil {
		return nil, err
	}
	var vals []string
	for _, c := range cuts {
		if !slices.Contains(vals, c) {
			vals = append(vals, c)
		}
	}
	if len(vals) == 0 {
		return &reuse{}, nil
	}
	valPos := map[string]int{}
	for l, c := range cuts {
		valPos[c] = pos[l]
	}
	sort.Slice(vals, func(i, j int) bool { return valPos[vals[i]] < valPos[vals[j]] })
	// Per-sample sizes from one sample.
	per, err := e.cutSizes(ctx, v, vals)
	if err != nil {
		return nil, err
	}
	total := func(vs []string) int64 {
		var n int64
		for _, s := range vs {
			n += per[s] * 4 * int64(e.in.N)
		}
		return n
	}
	for len(vals) > 1 && total(vals) > maxActivationBytes {
		var kept []string
		for i := len(vals) - 1; i >= 0; i -= 2 {
			kept = append([]string{vals[i]}, kept...)
		}
		vals = kept
	}
	if total(vals) > maxActivationBytes {
		return &reuse{}, nil
	}
	acts, err := e.runCuts(ctx, v, vals)
	if err != nil {
		return nil, err
	}
	r := &reuse{byLayer: map[string]*activation{}}
	for l, c := range cuts {
		// The latest kept cut at or before the layer's own.
		var best *activation
		for _, a := range acts {
			if valPos[a.name] <= valPos[c] {
				best = a
			}
		}
		if best != nil {
			r.byLayer[l] = best
		}
	}
	return r, nil
}

// openCuts opens the FP32 graph with vals as extra outputs.
func (e *evaluator) openCuts(v *convert.Variants, vals []string) (verify.Runner, error) {
	model, err := v.BuildFP32Outputs(vals)
	if err != nil {
		return nil, err
	}
	return e.open(model)
}

// cutSizes runs one sample through the FP32 graph with vals as outputs and
// returns each value's elements per sample.
func (e *evaluator) cutSizes(ctx context.Context, v *convert.Variants, vals []string) (map[string]int64, error) {
	r, err := e.openCuts(v, vals)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	in := e.in
	x := verify.Tensor{Name: r.Inputs()[0].Name, DType: verify.Float32, Shape: []int64{1, 3, int64(in.H), int64(in.W)},
		F32: in.X[:3*in.H*in.W]}
	outs, err := r.Run(ctx, []verify.Tensor{x})
	if err != nil {
		return nil, err
	}
	per := map[string]int64{}
	for _, o := range outs {
		if slices.Contains(vals, o.Name) {
			if o.DType != verify.Float32 || len(o.Shape) < 1 || o.Shape[0] != 1 {
				return nil, fmt.Errorf("%w: cut value %q is %s %v", verify.ErrModelIO, o.Name, o.DType, o.Shape)
			}
			per[o.Name] = int64(len(o.F32))
		}
	}
	if len(per) != len(vals) {
		return nil, fmt.Errorf("%w: %d of %d cut values came back", verify.ErrModelIO, len(per), len(vals))
	}
	return per, nil
}

// runCuts runs every input through the FP32 graph with vals as outputs.
func (e *evaluator) runCuts(ctx context.Context, v *convert.Variants, vals []string) ([]*activation, error) {
	r, err := e.openCuts(v, vals)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	in := e.in
	sl := 3 * in.H * in.W
	acts := make([]*activation, len(vals))
	for i, val := range vals {
		acts[i] = &activation{name: val}
	}
	for i := 0; i < in.N; i += evalBatch {
		n := min(evalBatch, in.N-i)
		x := verify.Tensor{Name: r.Inputs()[0].Name, DType: verify.Float32, Shape: []int64{int64(n), 3, int64(in.H), int64(in.W)},
			F32: in.X[i*sl : (i+n)*sl]}
		outs, err := r.Run(ctx, []verify.Tensor{x})
		if err != nil {
			return nil, err
		}
		for _, a := range acts {
			k := slices.IndexFunc(outs, func(t verify.Tensor) bool { return t.Name == a.name })
			if k < 0 || outs[k].DType != verify.Float32 || outs[k].Shape[0] != int64(n) {
				return nil, fmt.Errorf("%w: cut value %q missing or malformed", verify.ErrModelIO, a.name)
			}
			a.dims = slices.Clone(outs[k].Shape[1:])
			a.data = append(a.data, outs[k].F32...)
		}
	}
	return acts, nil
}

// evalCut runs a variant graph cut at a.name, fed from the stored FP32
// activations, and compares it with the FP32 outputs.
func (e *evaluator) evalCut(ctx context.Context, model []byte, a *activation) (Metrics, error) {
	r, err := e.open(model)
	if err != nil {
		return Metrics{}, err
	}
	defer r.Close()
	per := 1
	for _, d := range a.dims {
		per *= int(d)
	}
	var got []float32
	dim := 0
	for i := 0; i < e.in.N; i += evalBatch {
		n := min(evalBatch, e.in.N-i)
		x := verify.Tensor{Name: a.name, DType: verify.Float32, Shape: append([]int64{int64(n)}, a.dims...),
			F32: a.data[i*per : (i+n)*per]}
		outs, err := r.Run(ctx, []verify.Tensor{x})
		if err != nil {
			return Metrics{}, err
		}
		rows, d, err := e.extract(outs, n)
		if err != nil {
			return Metrics{}, err
		}
		dim = d
		got = append(got, rows...)
	}
	return e.compare(got, dim)
}
