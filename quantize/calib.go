package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
)

// OpenFunc opens a model held in memory whose external data files lie in
// dir. The command passes verify/ort's OpenBytes; tests may pass a fake.
type OpenFunc func(model []byte, dir string) (verify.Runner, error)

// calibrationModel encodes m with the tensors added as graph outputs (those
// that are not graph inputs or outputs already); m is left as it was.
func calibrationModel(m *onnx.Model, tensors []string) ([]byte, error) {
	g := m.Graph
	have := map[string]bool{}
	for _, v := range g.Inputs {
		have[v.Name] = true
	}
	for _, v := range g.Outputs {
		have[v.Name] = true
	}
	orig := g.Outputs
	defer func() { g.Outputs = orig }()
	g.Outputs = slices.Clone(orig)
	for _, t := range tensors {
		if !have[t] {
			// Element type float32 (the weight ops' activations are), shape
			// unknown: ONNX Runtime infers it.
			g.Outputs = append(g.Outputs, &onnx.ValueInfo{Name: t, ElemType: onnx.Float})
		}
	}
	return m.Marshal()
}

type batchResult struct {
	outs []verify.Tensor
	err  error
}

// Collect runs m in the runtime over every batch of src, with the tensors
// added as outputs, and returns their statistics. ONNX Runtime runs batch
// i+1 while the statistics of batch i are folded in (tensors in parallel,
// each tensor's batches in order, so the result does not depend on the
// number of workers). At most two batches of outputs are alive at once.
func Collect(ctx context.Context, m *onnx.Model, dir string, tensors []string, open OpenFunc, src Source) (map[string]*Stats, error) {
	b, err := calibrationModel(m, tensors)
	if err != nil {
		return nil, err
	}
	r, err := open(b, dir)
	if err != nil {
		return nil, err
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
	stats := make(map[string]*Stats, len(tensors))
	for _, t := range tensors {
		stats[t] = NewStats()
	}
	batches := 0
	for res := range results {
		if res.err != nil {
			return nil, res.err
		}
		if err := fold(stats, tensors, res.outs); err != nil {
			return nil, err
		}
		batches++
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if batches == 0 {
		return nil, fmt.Errorf("%w: no calibration sample", ErrCalibData)
	}
	return stats, nil
}

// fold adds one batch's tensors to their statistics, tensors in parallel.
func fold(stats map[string]*Stats, tensors []string, outs []verify.Tensor) error {
	byName := make(map[string]*verify.Tensor, len(outs))
	for i := range outs {
		byName[outs[i].Name] = &outs[i]
	}
	for _, name := range tensors {
		if byName[name] == nil {
			return fmt.Errorf("%w: the runtime returned no tensor %q", ErrGraph, name)
		}
	}
	var wg sync.WaitGroup
	next := make(chan string)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for name := range next {
				t := byName[name]
				switch t.DType {
				case verify.Float16:
					v := make([]float32, len(t.U16))
					quant.F16ToF32(v, t.U16)
					stats[name].Add(v)
				default:
					stats[name].Add(t.F32)
				}
				// Folded: let the collector have it while the rest of the
				// batch is folded and the next one runs.
				t.F32, t.U16 = nil, nil
			}
		})
	}
	for _, name := range tensors {
		next <- name
	}
	close(next)
	wg.Wait()
	return nil
}
