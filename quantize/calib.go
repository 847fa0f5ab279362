package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
)

// OpenFunc opens a model held in memory whose external data files lie in
// dir. The command passes verify/ort's OpenBytes; tests may pass a fake.
type OpenFunc func(model []byte, dir string) (verify.Runner, error)

// calibrationModel encodes m with the tensors added as graph outputs (those
// that are not graph inputs or outputs already); m is left as it was. The
// activations are float32 (the weight ops' activations are).
func calibrationModel(m *onnx.Model, tensors []string) ([]byte, error) {
	outs := make([]*onnx.ValueInfo, len(tensors))
	for i, t := range tensors {
		outs[i] = &onnx.ValueInfo{Name: t, ElemType: onnx.Float}
	}
	return m.MarshalWithOutputs(outs)
}

type batchResult struct {
	outs []verify.Tensor
	err  error
}

// Accumulator folds one calibrated tensor's values, batch by batch in
// order (Collect's histograms, ChannelStats).
type Accumulator interface {
	Add(t *verify.Tensor) error
}

// statsAcc folds runtime outputs (float32 or float16) into a Stats.
type statsAcc struct{ s *Stats }

func (a statsAcc) Add(t *verify.Tensor) error {
	if t.DType == verify.Float16 {
		v := make([]float32, len(t.U16))
		quant.F16ToF32(v, t.U16)
		a.s.Add(v)
		return nil
	}
	a.s.Add(t.F32)
	return nil
}

// Collect runs m in the runtime over every batch of src, with the tensors
// added as outputs, and returns their statistics (CollectInto with a Stats
// per tensor).
func Collect(ctx context.Context, m *onnx.Model, dir string, tensors []string, open OpenFunc, src Source) (map[string]*Stats, error) {
	stats := make(map[string]*Stats, len(tensors))
	acc := make(map[string]Accumulator, len(tensors))
	for _, t := range tensors {
		stats[t] = NewStats()
		acc[t] = statsAcc{stats[t]}
	}
	if err := CollectInto(ctx, m, dir, tensors, open, src, acc); err != nil {
		return nil, err
	}
	return stats, nil
}

// CollectInto runs m in the runtime over every batch of src, with the
// tensors added as outputs, and folds each into its accumulator. ONNX
// Runtime runs batch i+1 while batch i is folded in (tensors in parallel,
// each tensor's batches in order, so the result does not depend on the
// number of workers). At most two batches of outputs are alive at once.
func CollectInto(ctx context.Context, m *onnx.Model, dir string, tensors []string, open OpenFunc, src Source, acc map[string]Accumulator) error {
	b, err := calibrationModel(m, tensors)
	if err != nil {
		return err
	}
	r, err := open(b, dir)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unbuffered: at most the batch being folded and the one ONNX Runtime
	// has just produced are alive.
	results := make(chan batchResult)
	go func() {
		defer close(results)
		for {
			in, err := src.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			var outs []verify.Tensor
			if err == nil {
				outs, err = r.Run(ctx, in)
				outs = append(outs, in...) // graph inputs may be calibrated too
			}
			select {
			case results <- batchResult{outs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for _, t := range tensors {
		if acc[t] == nil {
			return fmt.Errorf("quantize: internal: no accumulator for %q", t)
		}
	}
	batches := 0
	for res := range results {
		if res.err != nil {
			return res.err
		}
		if err := fold(acc, tensors, res.outs); err != nil {
			return err
		}
		batches++
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if batches == 0 {
		return fmt.Errorf("%w: no calibration sample", ErrCalibData)
	}
	return nil
}

// fold adds one batch's tensors to their accumulators, tensors in
// parallel; the first error (in tensor order) is returned.
func fold(acc map[string]Accumulator, tensors []string, outs []verify.Tensor) error {
	byName := make(map[string]*verify.Tensor, len(outs))
	for i := range outs {
		byName[outs[i].Name] = &outs[i]
	}
	for _, name := range tensors {
		if byName[name] == nil {
			return fmt.Errorf("%w: the runtime returned no tensor %q", ErrGraph, name)
		}
	}
	errs := make([]error, len(tensors))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				name := tensors[i]
				errs[i] = acc[name].Add(byName[name])
				// Folded: let the collector have it while the rest of the
				// batch is folded and the next one runs.
				byName[name].F32, byName[name].U16 = nil, nil
			}
		})
	}
	for i := range tensors {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}
