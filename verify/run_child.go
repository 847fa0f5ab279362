package verify

import (
	"context"
	"fmt"
	"path/filepath"
)

// childRuns is how many times a memory child runs its model: the first run
// allocates ONNX Runtime's arenas and plans, the second confirms the peak.
const childRuns = 2

// ChildMeasurement is what a memory child measured (MeasureInChild).
type ChildMeasurement struct {
	// RSS is the process's resident memory after the runs.
	RSS RSS
	// GPUBytes is what the GPUQuery returned right after the runs, with the
	// session still open; nil without a query, without a model, or when the
	// query failed (GPUNote then holds its error). GPUDevice is the
	// query's device.
	GPUBytes  *int64
	GPUDevice string
	GPUNote   string
}

// MeasureInChild is the child side of a MemoryProbe. With modelPath empty
// it does nothing (the caller has only initialised the runtime, whose peak
// is the baseline). Otherwise it opens the model, feeds it batch synthetic
// inputs made with the preprocessing beside it (never zeros) childRuns
// times, calls gpu (when not nil) while the session is still open, and
// closes it. It returns the process's resident memory after that; the
// caller reports it (ReportPeakRSS, and on stdout). A failing gpu query is
// not an error: its message goes into GPUNote.
func MeasureInChild(ctx context.Context, open Opener, modelPath string, batch int, seed uint64, gpu GPUQuery) (ChildMeasurement, error) {
	var m ChildMeasurement
	if modelPath != "" {
		if err := runInChild(ctx, open, modelPath, batch, seed, gpu, &m); err != nil {
			return ChildMeasurement{}, err
		}
	}
	rss, err := CurrentRSS()
	if err != nil {
		return ChildMeasurement{}, err
	}
	m.RSS = rss
	return m, nil
}

func runInChild(ctx context.Context, open Opener, modelPath string, batch int, seed uint64, gpu GPUQuery, m *ChildMeasurement) error {
	if batch < 1 {
		return fmt.Errorf("%w: batch size %d", ErrOption, batch)
	}
	r, err := open(modelPath)
	if err != nil {
		return err
	}
	defer r.Close()
	in, h, w, err := imageInput(r, modelPath)
	if err != nil {
		return err
	}
	p := &pair{input: in, h: h, w: w}
	pre, err := preprocessorFor(filepath.Dir(modelPath), p)
	if err != nil {
		return err
	}
	l, err := NewSyntheticLoader(pre, batch, seed)
	if err != nil {
		return err
	}
	buf := make([]float32, batch*l.SampleLen())
	if _, err := l.Next(ctx, batch, buf); err != nil {
		return err
	}
	x := []Tensor{{Name: in.Name, DType: Float32, Shape: []int64{int64(batch), 3, int64(p.h), int64(p.w)}, F32: buf}}
	for i := range childRuns {
		if _, err := r.Run(ctx, x); err != nil {
			return fmt.Errorf("memory child, run %d of %s: %w", i, modelPath, err)
		}
	}
	if gpu != nil {
		// Now, before Close: NVML reports current usage, and the session's
		// GPU memory is released with it.
		switch v, dev, err := gpu(); {
		case err != nil:
			m.GPUNote = err.Error()
		default:
			m.GPUBytes, m.GPUDevice = &v, dev
		}
	}
	return nil
}
