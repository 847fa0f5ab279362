package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// ErrAccuracyTarget is a --min-cosine target that no quantized graph
// reached: every candidate node had to be left float.
var ErrAccuracyTarget = fault.New(fault.Gate, "quantize: accuracy target not reached")

// DefaultHoldout is the number of held-out samples --min-cosine measures
// agreement on when Config.Holdout is 0.
const DefaultHoldout = 16

// Accuracy is the manifest's record of an accuracy-aware run
// (--min-cosine): the agreement with FP32 on held-out samples before and
// after leaving the most sensitive nodes float, and the ranking.
type Accuracy struct {
	// MinCosine is the target: the mean output cosine with FP32 over the
	// held-out samples.
	MinCosine float64 `json:"min_cosine"`
	// Holdout describes the held-out samples: the ones after the
	// calibration samples in the same source, disjoint from them.
	Holdout SourceInfo `json:"holdout"`
	// AllQuantized is the agreement with every candidate node quantized;
	// Final with the nodes of Excluded left float.
	AllQuantized Agreement `json:"all_quantized"`
	Final        Agreement `json:"final"`
	// Sensitivity ranks the candidate nodes, most sensitive first, by the
	// output cosine with that node alone quantized; empty when the full
	// graph met the target.
	Sensitivity []NodeSensitivity `json:"sensitivity,omitempty"`
	// Excluded are the nodes left float to reach the target, in the order
	// they were taken out.
	Excluded []string `json:"excluded,omitempty"`
}

// Agreement is a quantized graph's output cosine with FP32 over the
// held-out samples (all float outputs of a sample concatenated).
type Agreement struct {
	CosineMean float64 `json:"cosine_mean"`
	CosineMin  float64 `json:"cosine_min"`
}

// NodeSensitivity is the agreement with FP32 when only Node is quantized.
type NodeSensitivity struct {
	Node   string  `json:"node"`
	OpType string  `json:"op_type"`
	Cosine float64 `json:"cosine_alone"`
}

// heldOut holds the held-out inputs and FP32's outputs on them.
type heldOut struct {
	inputs [][]verify.Tensor
	want   [][]float32
}

// flatOutputs concatenates the float32 outputs of one run.
func flatOutputs(outs []verify.Tensor) []float32 {
	var v []float32
	for _, t := range outs {
		if t.DType == verify.Float32 {
			v = append(v, t.F32...)
		}
	}
	return v
}

// newHeldOut reads every batch of src and runs the FP32 model r on it;
// calibrated is the number of calibration samples src comes after.
func newHeldOut(ctx context.Context, src Source, r verify.Runner, calibrated int) (*heldOut, error) {
	h := &heldOut{}
	for {
		in, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		outs, err := r.Run(ctx, in)
		if err != nil {
			return nil, err
		}
		h.inputs = append(h.inputs, in)
		h.want = append(h.want, flatOutputs(outs))
	}
	if len(h.inputs) == 0 {
		return nil, fmt.Errorf("%w: --min-cosine needs held-out samples after the %d used for calibration, and the calibration inputs have no more (lower --calib-samples or give more inputs)", ErrCalibData, calibrated)
	}
	return h, nil
}

// agreement runs r over the held-out inputs and compares with FP32.
func (h *heldOut) agreement(ctx context.Context, r verify.Runner) (Agreement, error) {
	a := Agreement{CosineMin: math.Inf(1)}
	for i, in := range h.inputs {
		outs, err := r.Run(ctx, in)
		if err != nil {
			return Agreement{}, err
		}
		got := flatOutputs(outs)
		if len(got) != len(h.want[i]) {
			return Agreement{}, fmt.Errorf("%w: the quantized graph returned %d output values, FP32 %d", ErrGraph, len(got), len(h.want[i]))
		}
		c := verify.Cosine(h.want[i], got)
		a.CosineMean += c
		a.CosineMin = math.Min(a.CosineMin, c)
	}
	a.CosineMean /= float64(len(h.inputs))
	return a, nil
}

// skipSource drops the first skip samples of a batch-1 source: the
// held-out samples are the ones after the calibration samples.
type skipSource struct {
	Source
	skip, skipped int
}

func (s *skipSource) Next(ctx context.Context) ([]verify.Tensor, error) {
	for s.skipped < s.skip {
		if _, err := s.Source.Next(ctx); err != nil {
			return nil, err
		}
		s.skipped++
	}
	return s.Source.Next(ctx)
}

func (s *skipSource) Info() SourceInfo {
	info := s.Source.Info()
	info.Count -= s.skipped
	if is, ok := s.Source.(*imageSource); ok && is.root != "" {
		info.SHA256 = is.sumOfFilesFrom(s.skipped, info.SkippedFiles) // the held-out images only
	}
	return info
}

// candidate is one quantized graph to measure: the plan's targets minus
// the nodes in float.
type candidate struct {
	load  func() (*onnx.Model, error)
	opt   Options
	cfg   Config
	bad   map[string]string
	stats map[string]*Stats
	open  OpenFunc
	dir   string
	held  *heldOut
}

// measure builds the quantized graph with the targets in float (and, when
// only is not "", every target but only) left float, and returns its
// agreement with FP32.
func (c *candidate) measure(ctx context.Context, float map[string]string, only string) (Agreement, error) {
	m, err := c.load()
	if err != nil {
		return Agreement{}, err
	}
	p, err := NewPlan(m, c.opt)
	if err != nil {
		return Agreement{}, err
	}
	p.leaveFloat(c.bad)
	p.leaveFloatNodes(float)
	if only != "" {
		p.drop(func(t *Target) string {
			if t.ID == only {
				return ""
			}
			return "not measured"
		})
	}
	acts, _ := chooseParams(p, c.stats, c.cfg)
	if _, err := Apply(m, p, acts, c.cfg.ActivationType); err != nil {
		return Agreement{}, err
	}
	b, err := m.Marshal()
	if err != nil {
		return Agreement{}, err
	}
	r, err := c.open(b, c.dir)
	if err != nil {
		return Agreement{}, err
	}
	defer r.Close()
	return c.held.agreement(ctx, r)
}

// autoExclude finds the nodes to leave float so that the mean output
// cosine on the held-out samples reaches cfg.MinCosine: if the full graph
// does not, it ranks every target by the cosine with that node alone
// quantized and leaves the worst float, one at a time, until the target
// holds. targets are the plan's target IDs (graph order) and op types.
// It returns the reasons to record per excluded node.
func (c *candidate) autoExclude(ctx context.Context, targets []NodeSensitivity, acc *Accuracy) (map[string]string, error) {
	all, err := c.measure(ctx, nil, "")
	if err != nil {
		return nil, err
	}
	acc.AllQuantized, acc.Final = all, all
	if all.CosineMean >= acc.MinCosine {
		return nil, nil
	}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a, err := c.measure(ctx, nil, t.Node)
		if err != nil {
			return nil, err
		}
		t.Cosine = a.CosineMean
		acc.Sensitivity = append(acc.Sensitivity, t)
	}
	// Most sensitive first; ties keep graph order.
	sort.SliceStable(acc.Sensitivity, func(i, j int) bool { return acc.Sensitivity[i].Cosine < acc.Sensitivity[j].Cosine })
	reasons := map[string]string{}
	for k, s := range acc.Sensitivity {
		if k == len(acc.Sensitivity)-1 {
			break // leaving the last one float too would quantize nothing
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		reasons[s.Node] = fmt.Sprintf("--min-cosine %g: sensitivity rank %d of %d (output cosine %.5f with only this node quantized, %d held-out samples; mean cosine %.5f before it was left float)",
			acc.MinCosine, k+1, len(acc.Sensitivity), s.Cosine, len(c.held.inputs), acc.Final.CosineMean)
		acc.Excluded = append(acc.Excluded, s.Node)
		if acc.Final, err = c.measure(ctx, reasons, ""); err != nil {
			return nil, err
		}
		if acc.Final.CosineMean >= acc.MinCosine {
			return reasons, nil
		}
	}
	return nil, fmt.Errorf("%w: --min-cosine %g: mean output cosine %.5f with all but the least sensitive of %d nodes left float (%.5f with all quantized)",
		ErrAccuracyTarget, acc.MinCosine, acc.Final.CosineMean, len(acc.Sensitivity), acc.AllQuantized.CosineMean)
}

// targetList names the plan's targets in graph order.
func targetList(p *Plan) []NodeSensitivity {
	out := make([]NodeSensitivity, 0, len(p.Targets))
	for _, t := range p.Targets {
		out = append(out, NodeSensitivity{Node: t.ID, OpType: opKey(t.Node)})
	}
	return slices.Clip(out)
}
