//go:build cgo

package ort

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/verify"
)

// maxPlans is how many input-shape combinations a session keeps tensors
// for. verify alternates between a few batch sizes; more than that means
// shapes vary per call and caching buys nothing.
const maxPlans = 4

// maxPrealloc caps the elements of an output pre-allocated from the shape a
// model declares (1 GiB of float32). Larger or unknown outputs are allocated
// by ONNX Runtime and copied at their real size, so a model that declares an
// absurd shape cannot make Run allocate it.
const maxPrealloc = 1 << 28

// plan holds the pinned tensors for one combination of input shapes, so
// repeated Runs with the same shapes allocate nothing but their results.
//
// Outputs are pre-allocated when their shape is known: fixed dimensions, and
// dynamic ones whose symbolic name (dim_param, e.g. "batch") also names an
// input dimension, which then gives the size. Other outputs are left to ONNX
// Runtime and copied out after the run. If a shape derived from a symbolic
// name turns out wrong (ONNX Runtime refuses the buffer), Run retries once
// with those outputs left to ONNX Runtime and keeps that choice.
type plan struct {
	shapes  [][]int64 // input shapes: the key
	in      []*buffer // one per model input
	inVals  []*C.OrtValue
	out     []*buffer     // one per model output; nil where ONNX Runtime allocates
	guessed []bool        // out[k]'s shape came from a symbolic name
	scratch []*C.OrtValue // outputs handed to Run
	pin     runtime.Pinner
}

func (p *plan) free() {
	for _, b := range p.in {
		if b != nil && b.val != nil {
			C.qp_value_release(b.val)
		}
	}
	for _, b := range p.out {
		if b != nil && b.val != nil {
			C.qp_value_release(b.val)
		}
	}
	p.in, p.out, p.inVals, p.scratch = nil, nil, nil, nil
	p.pin.Unpin()
}

// Run runs the model once. Inputs are matched by name (a single unnamed
// tensor is accepted for a single-input model); each must have the model's
// type, a shape that agrees with its fixed dimensions, and exactly as many
// elements as its shape. The results are copies the caller owns. Cancelling
// ctx terminates a run in progress.
func (s *Session) Run(ctx context.Context, in []verify.Tensor) ([]verify.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ort: run %s: %w", s.source, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errorf(ErrClosed, "run", s.source, "", "")
	}
	if err := s.match(in); err != nil {
		return nil, err
	}
	p, err := s.planFor(in)
	if err != nil {
		return nil, err
	}
	for i, b := range p.in {
		b.fill(&in[s.order[i]])
	}
	if err := s.runPlan(ctx, p); err != nil {
		return nil, err
	}
	return s.collect(p)
}

// match checks in against the model's inputs and sets s.order.
func (s *Session) match(in []verify.Tensor) error {
	if len(in) != len(s.inputs) {
		return errorf(ErrInput, "run", s.source, "", "model takes %d inputs (%s), got %d", len(s.inputs), s.inputList(), len(in))
	}
	for i := range s.order {
		s.order[i] = -1
	}
	for k := range in {
		t := &in[k]
		idx := -1
		if t.Name == "" && len(s.inputs) == 1 {
			idx = 0
		} else {
			for i := range s.inputs {
				if s.inputs[i].Name == t.Name {
					idx = i
					break
				}
			}
		}
		if idx < 0 {
			return errorf(ErrInput, "run", s.source, t.Name, "not an input of the model (%s)", s.inputList())
		}
		if s.order[idx] >= 0 {
			return errorf(ErrInput, "run", s.source, t.Name, "given twice")
		}
		s.order[idx] = k
		if err := s.check(t, &s.inputs[idx]); err != nil {
			return err
		}
	}
	return s.checkSymbols(in)
}

// checkSymbols requires dynamic dimensions that share a symbolic name
// (dim_param) to have one size across all inputs, as ONNX defines; ONNX
// Runtime does not check this itself.
func (s *Session) checkSymbols(in []verify.Tensor) error {
	for i := range s.inputs {
		for j, name := range s.inSym[i] {
			if name == "" || s.inputs[i].Shape[j] >= 0 {
				continue
			}
			d := in[s.order[i]].Shape[j]
			for i2 := 0; i2 <= i; i2++ {
				for j2, name2 := range s.inSym[i2] {
					if name2 == name && (i2 < i || j2 < j) {
						if d2 := in[s.order[i2]].Shape[j2]; d2 != d {
							return errorf(ErrInput, "run", s.source, s.inputs[i].Name,
								"dimension %d (%q) is %d, but %q has %q = %d", j, name, d, s.inputs[i2].Name, name, d2)
						}
					}
				}
			}
		}
	}
	return nil
}

// check validates one input tensor against the model's description.
func (s *Session) check(t *verify.Tensor, info *verify.IOInfo) error {
	bad := func(format string, args ...any) error {
		return errorf(ErrInput, "run", s.source, info.Name, format, args...)
	}
	if t.DType != info.DType {
		return bad("type %s, model wants %s", t.DType, info.DType)
	}
	if len(t.Shape) != len(info.Shape) {
		return bad("shape %v has rank %d, model wants %v", t.Shape, len(t.Shape), info.Shape)
	}
	for j, d := range t.Shape {
		if d <= 0 {
			return bad("dimension %d is %d; dimensions must be positive", j, d)
		}
		if info.Shape[j] >= 0 && info.Shape[j] != d {
			return bad("shape %v does not fit the model's %v at dimension %d", t.Shape, info.Shape, j)
		}
	}
	n, ok := numel(t.Shape)
	if !ok {
		return bad("shape %v overflows", t.Shape)
	}
	var have int
	switch t.DType {
	case verify.Float32:
		have = len(t.F32)
	case verify.Float16:
		have = len(t.U16)
	case verify.Int64:
		have = len(t.I64)
	}
	if have != n {
		return bad("shape %v holds %d elements, data has %d", t.Shape, n, have)
	}
	return nil
}

func (s *Session) inputList() string {
	names := make([]string, len(s.inputs))
	for i, x := range s.inputs {
		names[i] = fmt.Sprintf("%s %s%v", x.Name, x.DType, x.Shape)
	}
	return strings.Join(names, ", ")
}

// planFor returns the plan for the shapes of in, making one if needed.
func (s *Session) planFor(in []verify.Tensor) (*plan, error) {
next:
	for _, p := range s.plans {
		for i, shape := range p.shapes {
			if !slices.Equal(shape, in[s.order[i]].Shape) {
				continue next
			}
		}
		return p, nil
	}
	p, err := s.newPlan(in)
	if err != nil {
		return nil, err
	}
	if len(s.plans) == maxPlans {
		s.plans[0].free()
		s.plans = append(s.plans[:0], s.plans[1:]...)
	}
	s.plans = append(s.plans, p)
	return p, nil
}

func (s *Session) newPlan(in []verify.Tensor) (*plan, error) {
	p := &plan{}
	fail := func(name string, err error) (*plan, error) {
		p.free()
		return nil, errorf(ErrRun, "run", s.source, name, "tensor: %v", err)
	}
	// Sizes of symbolic dimensions, from the inputs.
	sym := make(map[string]int64)
	for i, info := range s.inputs {
		shape := append([]int64(nil), in[s.order[i]].Shape...)
		for j, name := range s.inSym[i] {
			if name != "" && info.Shape[j] < 0 {
				sym[name] = shape[j]
			}
		}
		n, _ := numel(shape) // checked by match
		b, err := newBuffer(&p.pin, info.DType, shape, n)
		if err != nil {
			return fail(info.Name, err)
		}
		p.shapes = append(p.shapes, shape)
		p.in = append(p.in, b)
		p.inVals = append(p.inVals, b.val)
	}
	p.out = make([]*buffer, len(s.outputs))
	p.guessed = make([]bool, len(s.outputs))
	p.scratch = make([]*C.OrtValue, len(s.outputs))
	for k, info := range s.outputs {
		shape, guessed, ok := resolve(info.Shape, s.outSym[k], sym)
		if !ok {
			continue
		}
		n, ok := numel(shape)
		if !ok || n > maxPrealloc {
			continue
		}
		b, err := newBuffer(&p.pin, info.DType, shape, n)
		if err != nil {
			return fail(info.Name, err)
		}
		p.out[k], p.guessed[k] = b, guessed
	}
	return p, nil
}

// resolve fills the dynamic dimensions of an output shape from the sizes
// of symbolic dimensions; ok is false if one stays unknown.
func resolve(model []int64, names []string, sym map[string]int64) (shape []int64, guessed, ok bool) {
	shape = append([]int64(nil), model...)
	for j, d := range shape {
		if d >= 0 {
			continue
		}
		v, found := sym[names[j]]
		if names[j] == "" || !found {
			return nil, false, false
		}
		shape[j], guessed = v, true
	}
	return shape, guessed, true
}

// runPlan runs the session over p's tensors, retrying once without
// guessed output shapes if ONNX Runtime refuses them.
func (s *Session) runPlan(ctx context.Context, p *plan) error {
	st, err := s.runOnce(ctx, p)
	if err != nil || st == nil {
		return err
	}
	retry := false
	for k, g := range p.guessed {
		if g {
			C.qp_value_release(p.out[k].val)
			p.out[k], p.guessed[k], retry = nil, false, true
		}
	}
	if retry {
		if st, err = s.runOnce(ctx, p); err != nil || st == nil {
			return err
		}
	}
	kind := ErrRun
	if st.code == codeInvalidArg {
		kind = ErrInput
	}
	return errorf(kind, "run", s.source, "", "%v", st)
}

// runOnce makes one ONNX Runtime call. A failed run comes back as a status;
// err is set only when ctx was cancelled during the run.
func (s *Session) runOnce(ctx context.Context, p *plan) (*status, error) {
	for k, b := range p.out {
		p.scratch[k] = nil
		if b != nil {
			p.scratch[k] = b.val
		}
	}
	var stop func() bool
	var stopped chan struct{}
	if ctx.Done() != nil {
		stopped = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			takeStatus(C.qp_runopts_terminate(s.runOpts, 1))
			close(stopped)
		})
	}
	st := takeStatus(C.qp_run(s.h, s.runOpts, firstName(s.inNames), firstValue(p.inVals), C.size_t(len(p.inVals)),
		firstName(s.outNames), firstValue(p.scratch), C.size_t(len(p.scratch))))
	if stop != nil && !stop() {
		<-stopped
		takeStatus(C.qp_runopts_terminate(s.runOpts, 0))
		s.dropAllocated(p)
		return nil, fmt.Errorf("ort: run %s: %w", s.source, ctx.Err())
	}
	if st != nil {
		s.dropAllocated(p)
	}
	return st, nil
}

// firstName and firstValue point at s[0], or are nil for an empty s (a
// model without inputs).
func firstName(s []*C.char) **C.char {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func firstValue(s []*C.OrtValue) **C.OrtValue {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// dropAllocated releases outputs ONNX Runtime allocated in a run whose
// results are not wanted.
func (s *Session) dropAllocated(p *plan) {
	for k, v := range p.scratch {
		if v != nil && p.out[k] == nil {
			C.qp_value_release(v)
		}
		p.scratch[k] = nil
	}
}

// collect copies the outputs of the last run of p.
func (s *Session) collect(p *plan) ([]verify.Tensor, error) {
	res := make([]verify.Tensor, len(s.outputs))
	var err error
	for k, info := range s.outputs {
		if b := p.out[k]; b != nil {
			res[k] = b.tensor(info.Name)
			continue
		}
		v := p.scratch[k]
		p.scratch[k] = nil
		if err != nil {
			C.qp_value_release(v)
			continue
		}
		if res[k], err = takeValue(v, info.Name); err != nil {
			err = errorf(ErrRun, "run", s.source, info.Name, "output: %v", err)
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
