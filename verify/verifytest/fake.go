// Package verifytest provides a deterministic fake verify.Runner, so that
// code built on verify.Compare (study, the CLI) can be tested without ONNX
// Runtime: the comparison, timing, caching and report logic run for real,
// only the model call is replaced.
package verifytest

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/quantpack/quantpack/verify"
)

// Runner is a fake model: output k of sample n is
// Scale · mean_i(x[n,i]·sin(i·(k+1))), so two fakes with scales a and b
// give outputs in exact ratio a/b (cosine 1, identical top-1). Each Run
// sleeps Delay, so latencies are positive and ordered by Delay.
type Runner struct {
	Input  verify.IOInfo
	Output verify.IOInfo
	Dim    int
	Scale  float32
	Delay  time.Duration
	// Runs counts calls to Run.
	Runs atomic.Int64
}

// New returns a fake image classifier: input "pixel_values" [-1,3,size,size],
// output name [-1,dim].
func New(size int, name string, dim int, scale float32) *Runner {
	return &Runner{
		Input:  verify.IOInfo{Name: "pixel_values", DType: verify.Float32, Shape: []int64{-1, 3, int64(size), int64(size)}},
		Output: verify.IOInfo{Name: name, DType: verify.Float32, Shape: []int64{-1, int64(dim)}},
		Dim:    dim, Scale: scale,
	}
}

// Inputs returns the one image input.
func (f *Runner) Inputs() []verify.IOInfo { return []verify.IOInfo{f.Input} }

// Outputs returns the one output.
func (f *Runner) Outputs() []verify.IOInfo { return []verify.IOInfo{f.Output} }

// Close does nothing.
func (f *Runner) Close() error { return nil }

// Run computes the fake outputs of a [N,3,H,W] batch.
func (f *Runner) Run(ctx context.Context, in []verify.Tensor) ([]verify.Tensor, error) {
	if len(in) != 1 || in[0].Name != f.Input.Name || len(in[0].Shape) != 4 || in[0].Shape[0] < 1 {
		return nil, errors.New("verifytest: wrong inputs")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.Runs.Add(1)
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	n := int(in[0].Shape[0])
	per := len(in[0].F32) / n
	out := make([]float32, n*f.Dim)
	for s := range n {
		row := in[0].F32[s*per : (s+1)*per]
		for k := range f.Dim {
			var acc float64
			for i, v := range row {
				acc += float64(v) * math.Sin(float64(i*(k+1)))
			}
			out[s*f.Dim+k] = f.Scale * float32(acc/float64(per))
		}
	}
	return []verify.Tensor{{Name: f.Output.Name, DType: verify.Float32, Shape: []int64{int64(n), int64(f.Dim)}, F32: out}}, nil
}
