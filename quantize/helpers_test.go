package quantize

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func randF32(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

// tinyModel is a hand-built graph with every case of the plan:
//
//	x[N,4] → MatMul W1[4,6] → Add b1 → Relu → r1
//	r1 · y (y[6,3] a second input: an activation×activation MatMul, the
//	attention-core shape) → Softmax → Gemm(W2[5,3], b2, transB=1) → logits
func tinyModel(seed uint64) *onnx.Model {
	r := rand.New(rand.NewPCG(seed, 7))
	w1 := randF32(r, 24, 0.5)
	w1[5] = 3 // an outlier in channel 1: per-channel scales must keep channel 0 fine
	g := &onnx.Graph{Name: "tiny"}
	g.Inputs = []*onnx.ValueInfo{
		onnx.TensorValue("x", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(4)),
		onnx.TensorValue("y", onnx.Float, onnx.Fixed(6), onnx.Fixed(3)),
	}
	g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("logits", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(5))}
	g.Initializers = []*onnx.Tensor{
		onnx.TensorF32("W1", []int64{4, 6}, w1),
		onnx.TensorF32("b1", []int64{6}, randF32(r, 6, 0.1)),
		onnx.TensorF32("W2", []int64{5, 3}, randF32(r, 15, 1)),
		onnx.TensorF32("b2", []int64{5}, randF32(r, 5, 0.1)),
	}
	g.AddNode("MatMul", []string{"x", "W1"}, []string{"h1"}).Name = "fc1"
	g.AddNode("Add", []string{"h1", "b1"}, []string{"a1"}).Name = "fc1_bias"
	g.AddNode("Relu", []string{"a1"}, []string{"r1"}).Name = "act"
	g.AddNode("MatMul", []string{"r1", "y"}, []string{"s"}).Name = "attn_scores"
	g.AddNode("Softmax", []string{"s"}, []string{"p"}, onnx.AttrInt("axis", -1)).Name = "attn_softmax"
	g.AddNode("Gemm", []string{"p", "W2", "b2"}, []string{"logits"}, onnx.AttrInt("transB", 1)).Name = "head"
	return &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 17)}, ProducerName: "quantize test", Graph: g}
}

// tinyInputs are n samples of x (and the fixed y) as one batch.
func tinyInputs(seed uint64, n int) []verify.Tensor {
	r := rand.New(rand.NewPCG(seed, 11))
	return []verify.Tensor{
		{Name: "x", DType: verify.Float32, Shape: []int64{int64(n), 4}, F32: randF32(r, 4*n, 1)},
		{Name: "y", DType: verify.Float32, Shape: []int64{6, 3}, F32: randF32(r, 18, 1)},
	}
}

// sliceSource yields fixed batches.
type sliceSource struct {
	batches [][]verify.Tensor
	pos     int
}

func (s *sliceSource) Next(ctx context.Context) ([]verify.Tensor, error) {
	if s.pos >= len(s.batches) {
		return nil, io.EOF
	}
	s.pos++
	return s.batches[s.pos-1], nil
}

func (s *sliceSource) Info() SourceInfo { return SourceInfo{Kind: "test", Count: s.pos} }
func (s *sliceSource) Close() error     { return nil }

func to64(t verify.Tensor) tensor64 {
	x := tensor64{shape: t.Shape, v: make([]float64, len(t.F32))}
	for i, v := range t.F32 {
		x.v[i] = float64(v)
	}
	return x
}

// initORT loads ONNX Runtime or skips (fails in CI).
func initORT(t testing.TB) {
	t.Helper()
	lib, err := ort.LibraryPath("")
	if err == nil {
		err = ort.Init(lib)
	}
	if err != nil {
		testenv.SkipOrFail(t, "ONNX Runtime not available: %v", err)
	}
}

func ortOpen(model []byte, dir string) (verify.Runner, error) {
	s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: 1, ExternalDataDir: dir})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func closeTo(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
