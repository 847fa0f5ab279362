package tune

import (
	"context"
	"fmt"
	"slices"

	"github.com/quantpack/quantpack/verify"
)

// Opener opens an in-memory ONNX model as a Runner. The command line passes
// one that makes ONNX Runtime sessions; tests may pass fakes.
type Opener func(model []byte, opt SessionOptions) (verify.Runner, error)

// SessionOptions say how an Opener opens a variant graph.
type SessionOptions struct {
	// DataDir is the folder of the graph's external data (ONNX Runtime's
	// external-initializer folder); "" when every initializer is inline.
	DataDir string
	// Threads is the session's intra-op thread count: the cores shared
	// among the variants that run at once, so that workers × threads stays
	// within the cores.
	Threads int
}

// evalBatch is the batch size of every run: large enough to amortise the
// per-call cost, small enough that activations stay a few MB per session.
const evalBatch = 16

// Metrics are one variant's outputs against the FP32 outputs on the same
// inputs. Top1 and Top1Agreement are fractions; Top1 is nil without labels.
// For an embedding output, Top1Agreement and KL are 0.
type Metrics struct {
	KLMean        float64  `json:"kl_mean"`
	KLMax         float64  `json:"kl_max"`
	CosineMean    float64  `json:"cosine_mean"`
	CosineMin     float64  `json:"cosine_min"`
	Top1Agreement float64  `json:"top1_agreement"`
	Top1          *float64 `json:"top1,omitempty"`
	NonFinite     int      `json:"non_finite,omitempty"`
}

// evaluator runs models on fixed inputs and compares them with the FP32
// outputs, computed once.
type evaluator struct {
	in     *Inputs
	opener Opener
	// sess opens every variant graph (Variants.DataDir, threads per
	// session).
	sess SessionOptions
	out  outputSpec
	base []float32 // FP32 outputs [N, dim]
	dim  int
	// baseTop1 is the FP32 labelled top-1 (nil without labels).
	baseTop1 *float64
}

// outputSpec is the output compared: logits when the model has them, else
// pooler_output, else the CLS token of last_hidden_state.
type outputSpec struct {
	name string
	kind verify.OutputKind
	cls  bool
}

func chooseOutput(r verify.Runner) (outputSpec, error) {
	outs := r.Outputs()
	find := func(name string) (verify.IOInfo, bool) {
		i := slices.IndexFunc(outs, func(o verify.IOInfo) bool { return o.Name == name })
		if i < 0 {
			return verify.IOInfo{}, false
		}
		return outs[i], true
	}
	if _, ok := find("logits"); ok {
		return outputSpec{name: "logits", kind: verify.Logits}, nil
	}
	if _, ok := find("pooler_output"); ok {
		return outputSpec{name: "pooler_output", kind: verify.Embedding}, nil
	}
	if o, ok := find("last_hidden_state"); ok && len(o.Shape) == 3 {
		return outputSpec{name: "last_hidden_state", kind: verify.Embedding, cls: true}, nil
	}
	return outputSpec{}, fmt.Errorf("%w: no logits, pooler_output or last_hidden_state output", verify.ErrModelIO)
}

// newEvaluator runs the FP32 model once and keeps its outputs.
func newEvaluator(ctx context.Context, in *Inputs, open Opener, sess SessionOptions, fp32 []byte) (*evaluator, error) {
	e := &evaluator{in: in, opener: open, sess: sess}
	r, err := e.open(fp32)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if e.out, err = chooseOutput(r); err != nil {
		return nil, err
	}
	if e.base, e.dim, err = e.run(ctx, r); err != nil {
		return nil, err
	}
	if in.Labelled() && e.out.kind == verify.Logits {
		var acc verify.Accuracy
		if err := acc.Add(e.base, e.dim, in.Labels); err != nil {
			return nil, err
		}
		t := acc.Top1()
		e.baseTop1 = &t
	}
	return e, nil
}

// run returns r's chosen output on every input, [N, dim].
func (e *evaluator) run(ctx context.Context, r verify.Runner) ([]float32, int, error) {
	in := e.in
	sl := 3 * in.H * in.W
	name := r.Inputs()[0].Name
	var all []float32
	dim := 0
	for i := 0; i < in.N; i += evalBatch {
		n := min(evalBatch, in.N-i)
		x := verify.Tensor{Name: name, DType: verify.Float32, Shape: []int64{int64(n), 3, int64(in.H), int64(in.W)},
			F32: in.X[i*sl : (i+n)*sl]}
		outs, err := r.Run(ctx, []verify.Tensor{x})
		if err != nil {
			return nil, 0, err
		}
		rows, d, err := e.extract(outs, n)
		if err != nil {
			return nil, 0, err
		}
		dim = d
		all = append(all, rows...)
	}
	return all, dim, nil
}

func (e *evaluator) extract(outs []verify.Tensor, n int) ([]float32, int, error) {
	i := slices.IndexFunc(outs, func(t verify.Tensor) bool { return t.Name == e.out.name })
	if i < 0 || outs[i].DType != verify.Float32 {
		return nil, 0, fmt.Errorf("%w: no float32 output %q", verify.ErrModelIO, e.out.name)
	}
	t := outs[i]
	if e.out.cls {
		if len(t.Shape) != 3 || t.Shape[0] != int64(n) {
			return nil, 0, fmt.Errorf("%w: output %q has shape %v", verify.ErrModelIO, t.Name, t.Shape)
		}
		rows, err := verify.CLSToken(t.F32, int(t.Shape[1]), int(t.Shape[2]))
		return rows, int(t.Shape[2]), err
	}
	if len(t.Shape) != 2 || t.Shape[0] != int64(n) || t.Shape[1] < 1 || len(t.F32) != n*int(t.Shape[1]) {
		return nil, 0, fmt.Errorf("%w: output %q has shape %v for a batch of %d", verify.ErrModelIO, t.Name, t.Shape, n)
	}
	return t.F32, int(t.Shape[1]), nil
}

// open opens a variant graph with the evaluator's session options.
func (e *evaluator) open(model []byte) (verify.Runner, error) { return e.opener(model, e.sess) }

// eval runs one variant's model and compares it with the FP32 outputs.
func (e *evaluator) eval(ctx context.Context, model []byte) (Metrics, error) {
	r, err := e.open(model)
	if err != nil {
		return Metrics{}, err
	}
	defer r.Close()
	return e.evalRunner(ctx, r)
}

// evalRunner runs an opened model and compares it with the FP32 outputs.
func (e *evaluator) evalRunner(ctx context.Context, r verify.Runner) (Metrics, error) {
	got, dim, err := e.run(ctx, r)
	if err != nil {
		return Metrics{}, err
	}
	return e.compare(got, dim)
}

// compare computes Metrics of outputs got against the FP32 outputs.
func (e *evaluator) compare(got []float32, dim int) (Metrics, error) {
	if dim != e.dim || len(got) != len(e.base) {
		return Metrics{}, fmt.Errorf("%w: variant output %d×%d, FP32 %d×%d", verify.ErrMismatch, len(got)/max(dim, 1), dim, len(e.base)/e.dim, e.dim)
	}
	c, err := verify.NewComparer(e.out.kind, dim)
	if err != nil {
		return Metrics{}, err
	}
	if err := c.Add(e.base, got); err != nil {
		return Metrics{}, err
	}
	a := c.Result()
	m := Metrics{CosineMean: a.CosineMean, CosineMin: a.CosineMin, NonFinite: a.NonFiniteSamples}
	if a.Top1 != nil {
		m.Top1Agreement = *a.Top1
	}
	if a.KLMean != nil {
		m.KLMean, m.KLMax = *a.KLMean, *a.KLMax
	}
	if e.baseTop1 != nil {
		var acc verify.Accuracy
		if err := acc.Add(got, dim, e.in.Labels); err != nil {
			return Metrics{}, err
		}
		t := acc.Top1()
		m.Top1 = &t
	}
	return m, nil
}
