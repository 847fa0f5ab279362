package quantize

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/verify"
)

// TestORTRunsTinyQDQ runs the quantized tiny graph in ONNX Runtime (which
// fuses the QDQ MatMul into MatMulIntegerToFloat and the Gemm into
// QGemm where it can) and compares it with the float64 interpreter's value
// of the same QDQ graph.
func TestORTRunsTinyQDQ(t *testing.T) {
	initORT(t)
	for _, at := range []QType{Uint8, Int8} {
		m := tinySingle(5)
		p, err := NewPlan(m, Options{ActivationType: at})
		if err != nil {
			t.Fatal(err)
		}
		in := tinyInputs(4, 16)[:1]
		calibrateMinMax(t, m, p, in, at)
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, err := ortOpen(b, "")
		if err != nil {
			t.Fatalf("%s: ONNX Runtime refuses the QDQ graph: %v", at, err)
		}
		outs, err := r.Run(context.Background(), in)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := eval64(m.Graph, map[string]tensor64{"x": to64(in[0])})["logits"]
		got := outs[0].F32
		for i := range want.v {
			// ORT computes in float32 (int32 accumulation, then float
			// scales): 1e-4 relative to the logit scale covers that; a
			// wrong zero point or axis is off by whole steps (≥ 1e-2).
			if !closeTo(float64(got[i]), want.v[i], 1e-4*(1+math.Abs(want.v[i]))) {
				t.Fatalf("%s: logits[%d] ORT %v, float64 QDQ reference %v", at, i, got[i], want.v[i])
			}
		}
	}
}

// TestORTConvQDQ: a depthwise and a dense Conv (pads, strides, bias)
// quantized by the pass, run in ONNX Runtime, against the float64
// interpreter's value of the same QDQ graph.
func TestORTConvQDQ(t *testing.T) {
	initORT(t)
	r := rand.New(rand.NewPCG(8, 9))
	g := &onnx.Graph{Name: "conv"}
	g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("img", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(4), onnx.Fixed(9), onnx.Fixed(9))}
	g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("out", onnx.Float)}
	g.Initializers = []*onnx.Tensor{
		onnx.TensorF32("Kd", []int64{4, 1, 3, 3}, randF32(r, 36, 0.5)), onnx.TensorF32("Bd", []int64{4}, randF32(r, 4, 0.1)),
		onnx.TensorF32("K", []int64{6, 4, 3, 3}, randF32(r, 216, 0.3)), onnx.TensorF32("B", []int64{6}, randF32(r, 6, 0.1)),
	}
	g.AddNode("Conv", []string{"img", "Kd", "Bd"}, []string{"d"}, onnx.AttrInt("group", 4), onnx.AttrInts("pads", 1, 1, 1, 1))
	g.AddNode("Relu", []string{"d"}, []string{"dr"})
	g.AddNode("Conv", []string{"dr", "K", "B"}, []string{"out"}, onnx.AttrInts("strides", 2, 2), onnx.AttrInts("pads", 0, 1, 0, 1))
	m := &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 13)}, Graph: g}
	in := []verify.Tensor{{Name: "img", DType: verify.Float32, Shape: []int64{2, 4, 9, 9}, F32: randF32(r, 2*4*81, 1)}}
	// The interpreter's float graph agrees with ORT's: checks conv2d.
	ref := eval64(g, map[string]tensor64{"img": to64(in[0])})["out"]
	p, err := NewPlan(m, Options{})
	if err != nil || len(p.Targets) != 2 {
		t.Fatalf("plan %v %v", p, err)
	}
	calibrateMinMax(t, m, p, in, Uint8)
	b, _ := m.Marshal()
	s, err := ortOpen(b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outs, err := s.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := eval64(m.Graph, map[string]tensor64{"img": to64(in[0])})["out"]
	var errQ, scale float64
	for i := range want.v {
		if !closeTo(float64(outs[0].F32[i]), want.v[i], 1e-4*(1+math.Abs(want.v[i]))) {
			t.Fatalf("out[%d]: ORT %v, float64 QDQ reference %v", i, outs[0].F32[i], want.v[i])
		}
		errQ = math.Max(errQ, math.Abs(want.v[i]-ref.v[i]))
		scale = math.Max(scale, math.Abs(ref.v[i]))
	}
	// And quantization itself stays small next to the float result.
	if errQ > 0.05*scale {
		t.Errorf("QDQ error %v against a float output of magnitude %v", errQ, scale)
	}
}

// calibrateMinMax calibrates plan p of m on one batch in ORT with min/max
// ranges and applies the QDQ pass to m in place.
func calibrateMinMax(t *testing.T, m *onnx.Model, p *Plan, in []verify.Tensor, at QType) {
	t.Helper()
	stats, err := Collect(context.Background(), m, "", p.Tensors, ortOpen, &sliceSource{batches: [][]verify.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	acts := map[string]Params{}
	for _, name := range p.Tensors {
		lo, hi := stats[name].Range(MinMax, 0)
		acts[name] = ActivationParams(lo, hi, at)
	}
	if _, err := Apply(m, p, acts, at); err != nil {
		t.Fatal(err)
	}
}
