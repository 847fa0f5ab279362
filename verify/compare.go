package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// pair is the two opened models and what they are compared on.
type pair struct {
	base, cand         Runner
	basePath, candPath string
	input              IOInfo
	h, w               int
	out                outputChoice
	// applied is the runtime both sessions run with (Runtime.open).
	applied Applied
}

// agreementResult is the outcome of the comparison pass.
type agreementResult struct {
	agreement Agreement
	accuracy  *AccuracyReport
	labelled  int
	kls       []float64 // per-sample KL divergence
}

// compareOutputs feeds every sample of l to both models, batch samples at
// a time, and accumulates agreement and, where samples carry labels and
// the outputs are logits, each model's accuracy. A batch shorter than
// batch (the last one, or one after skipped images) runs as it is: the
// batch dimension of exports is dynamic.
func compareOutputs(ctx context.Context, p *pair, l *Loader, batch int) (agreementResult, error) {
	var res agreementResult
	sl := l.SampleLen()
	buf := make([]float32, batch*sl)
	labels := make([]int, 0, batch)
	var cmp *Comparer
	var accB, accC Accuracy
	scored := false
	for {
		samples, err := l.Next(ctx, batch, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		n := len(samples)
		in := []Tensor{{Name: p.input.Name, DType: Float32, Shape: []int64{int64(n), 3, int64(p.h), int64(p.w)}, F32: buf[:n*sl]}}
		ob, err := p.base.Run(ctx, in)
		if err != nil {
			return res, fmt.Errorf("baseline %s: %w", p.basePath, err)
		}
		oc, err := p.cand.Run(ctx, in)
		if err != nil {
			return res, fmt.Errorf("candidate %s: %w", p.candPath, err)
		}
		rb, dim, err := p.out.extract(ob, n, p.basePath)
		if err != nil {
			return res, err
		}
		rc, dimC, err := p.out.extract(oc, n, p.candPath)
		if err != nil {
			return res, err
		}
		if dimC != dim {
			return res, fmt.Errorf("%w: output %q has %d values per sample in the baseline, %d in the candidate", ErrMismatch, p.out.name, dim, dimC)
		}
		if cmp == nil {
			if cmp, err = NewComparer(p.out.kind, dim); err != nil {
				return res, err
			}
		}
		if err := cmp.Add(rb, rc); err != nil {
			return res, err
		}
		labels = labels[:0]
		known := 0
		for _, s := range samples {
			labels = append(labels, s.Label)
			if s.Label >= 0 {
				known++
			}
		}
		if known == 0 || p.out.kind != Logits {
			continue
		}
		res.labelled += known
		scored = true
		if err := accB.Add(rb, dim, labels); err != nil {
			return res, fmt.Errorf("baseline %s: %w", p.basePath, err)
		}
		if err := accC.Add(rc, dim, labels); err != nil {
			return res, fmt.Errorf("candidate %s: %w", p.candPath, err)
		}
	}
	if cmp == nil {
		return res, fmt.Errorf("%w: no input to compare on", ErrNoImages)
	}
	res.agreement = cmp.Result()
	res.kls = cmp.KLValues()
	if scored {
		acc, err := CompareAccuracy(accB, accC)
		if err != nil {
			return res, err
		}
		res.accuracy = &acc
	}
	return res, nil
}
