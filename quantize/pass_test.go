package quantize

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/verify"
)

func TestPlanTinyGraph(t *testing.T) {
	p, err := NewPlan(tinyModel(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range p.Targets {
		ids = append(ids, tg.ID)
	}
	if !slices.Equal(ids, []string{"fc1", "head"}) {
		t.Errorf("targets %v, want [fc1 head]", ids)
	}
	if !slices.Equal(p.Tensors, []string{"x", "p"}) {
		t.Errorf("activation tensors %v, want [x p]", p.Tensors)
	}
	if p.Targets[0].Axis != 1 || p.Targets[1].Axis != 0 {
		t.Errorf("weight axes %d, %d; want 1 (MatMul [K,N]) and 0 (Gemm transB [N,K])", p.Targets[0].Axis, p.Targets[1].Axis)
	}
	reasons := map[string]string{}
	for _, f := range p.Float {
		reasons[f.Node] = f.Reason
	}
	if reasons["attn_scores"] != reasonAttentionCore {
		t.Errorf("attn_scores left float for %q", reasons["attn_scores"])
	}
	if reasons["attn_softmax"] == "" {
		t.Error("Softmax not listed as left float")
	}
}

func TestPlanExcludeInclude(t *testing.T) {
	p, err := NewPlan(tinyModel(1), Options{Exclude: []string{"he*"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || p.Targets[0].ID != "fc1" {
		t.Fatalf("--exclude he*: targets %v", p.Targets)
	}
	// By tensor name: the input "x" of fc1.
	p, err = NewPlan(tinyModel(1), Options{Exclude: []string{"x"}})
	if err != nil || len(p.Targets) != 1 || p.Targets[0].ID != "head" {
		t.Fatalf("--exclude x: %v %v", p, err)
	}
	p, err = NewPlan(tinyModel(1), Options{IncludeOps: []string{"Softmax", "MatMul"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range p.Targets {
		ids = append(ids, tg.ID)
	}
	if !slices.Equal(ids, []string{"fc1", "attn_scores", "attn_softmax", "head"}) {
		t.Errorf("--include-ops Softmax,MatMul: targets %v", ids)
	}
	if !slices.Equal(p.Tensors, []string{"x", "r1", "y", "s", "p"}) {
		t.Errorf("tensors %v", p.Tensors)
	}
	if _, err := NewPlan(tinyModel(1), Options{Exclude: []string{"[x"}}); err == nil {
		t.Error("malformed glob accepted")
	}
}

// TestApplyNodeByNode calibrates the tiny graph (min/max, through the
// float64 interpreter), applies the pass, and checks every node of the
// result against a float64 reference of the QDQ math computed here from
// the ONNX operator definitions: the parameters of each Q/DQ, every weight
// code, and the value of every original tensor of the quantized graph.
func TestApplyNodeByNode(t *testing.T) {
	for _, at := range []QType{Uint8, Int8} {
		t.Run(string(at), func(t *testing.T) {
			m := tinyModel(3)
			orig := tinyModel(3)
			p, err := NewPlan(m, Options{ActivationType: at})
			if err != nil {
				t.Fatal(err)
			}
			batches := [][]verify.Tensor{tinyInputs(1, 5), tinyInputs(2, 7)}
			stats, err := Collect(context.Background(), m, "", p.Tensors, evalOpen(""), &sliceSource{batches: batches})
			if err != nil {
				t.Fatal(err)
			}
			// Reference ranges: exact min/max of each tensor over both
			// batches, in float64 of the float32 values the runtime returns.
			refRange := map[string][2]float64{}
			for _, b := range batches {
				env := eval64(orig.Graph, map[string]tensor64{"x": to64(b[0]), "y": to64(b[1])})
				for _, name := range p.Tensors {
					r, ok := refRange[name]
					if !ok {
						r = [2]float64{math.Inf(1), math.Inf(-1)}
					}
					for _, v := range env[name].v {
						f := float64(float32(v))
						r = [2]float64{math.Min(r[0], f), math.Max(r[1], f)}
					}
					refRange[name] = r
				}
			}
			acts := map[string]Params{}
			for _, name := range p.Tensors {
				lo, hi := stats[name].Range(MinMax, 0)
				if lo != refRange[name][0] || hi != refRange[name][1] {
					t.Fatalf("%s: calibrated [%v, %v], reference [%v, %v]", name, lo, hi, refRange[name][0], refRange[name][1])
				}
				acts[name] = ActivationParams(lo, hi, at)
			}
			if _, err := Apply(m, p, acts, at); err != nil {
				t.Fatal(err)
			}
			checkTopological(t, m.Graph)

			// Q/DQ parameters against the reference formulas.
			qmin, qmax := 0.0, 255.0
			if at == Int8 {
				qmin, qmax = -128, 127
			}
			inits := map[string]tensor64{}
			for _, it := range m.Graph.Initializers {
				inits[it.Name] = initValue(it)
			}
			for _, n := range m.Graph.Nodes {
				if n.OpType != "QuantizeLinear" {
					continue
				}
				r := refRange[n.Inputs[0]]
				lo, hi := math.Min(r[0], 0), math.Max(r[1], 0)
				scale := float64(float32((hi - lo) / (qmax - qmin)))
				zp := math.Max(qmin, math.Min(qmax, math.RoundToEven(qmin-lo/scale)))
				if s := inits[n.Inputs[1]].v[0]; s != scale {
					t.Errorf("%s: scale %v, reference %v", n.Inputs[0], s, scale)
				}
				if z := inits[n.Inputs[2]]; z.v[0] != zp || z.dt != map[QType]onnx.DataType{Uint8: onnx.Uint8, Int8: onnx.Int8}[at] {
					t.Errorf("%s: zero point %v (%v), reference %v", n.Inputs[0], z.v[0], z.dt, zp)
				}
			}
			// Weight codes: symmetric per output channel, [-127, 127].
			for _, c := range []struct {
				name string
				axis int
			}{{"W1", 1}, {"W2", 0}} {
				w := initValue(orig.Graph.Initializer(c.name))
				q, s := inits[c.name+"_quantized"], inits[c.name+"_scale"]
				if q.dt != onnx.Int8 || len(s.v) != int(w.shape[c.axis]) {
					t.Fatalf("%s: codes %v, %d scales", c.name, q.dt, len(s.v))
				}
				absmax := make([]float64, w.shape[c.axis])
				ch := func(i int) int {
					if c.axis == 1 {
						return i % int(w.shape[1])
					}
					return i / int(w.shape[1])
				}
				for i, v := range w.v {
					absmax[ch(i)] = math.Max(absmax[ch(i)], math.Abs(v))
				}
				for k, a := range absmax {
					if want := float64(float32(a / 127)); s.v[k] != want {
						t.Errorf("%s channel %d: scale %v, reference %v", c.name, k, s.v[k], want)
					}
				}
				for i, v := range w.v {
					want := math.Max(-127, math.Min(127, math.RoundToEven(v/s.v[ch(i)])))
					if q.v[i] != want {
						t.Errorf("%s[%d] = %v: code %v, reference %v", c.name, i, v, q.v[i], want)
					}
					if err := math.Abs(q.v[i]*s.v[ch(i)] - v); err > s.v[ch(i)]/2*(1+1e-6) {
						t.Errorf("%s[%d]: dequantized error %v over half a step %v", c.name, i, err, s.v[ch(i)]/2)
					}
				}
			}
			// Every original tensor, node by node: the quantized graph
			// against the float graph with fake quantization applied by
			// hand at the same places.
			in := tinyInputs(9, 6)
			env := map[string]tensor64{"x": to64(in[0]), "y": to64(in[1])}
			got := eval64(m.Graph, env)
			fq := func(x tensor64, name string) tensor64 {
				pr := acts[name]
				y := tensor64{shape: x.shape, v: make([]float64, len(x.v))}
				for i, v := range x.v {
					q := math.Max(qmin, math.Min(qmax, math.RoundToEven(v/float64(pr.Scale))+float64(pr.ZeroPoint)))
					y.v[i] = (q - float64(pr.ZeroPoint)) * float64(pr.Scale)
				}
				return y
			}
			dqw := func(name string) tensor64 {
				q, s := inits[name+"_quantized"], inits[name+"_scale"]
				y := tensor64{shape: q.shape, v: make([]float64, len(q.v))}
				for i, v := range q.v {
					c := i % len(s.v) // W1 axis 1
					if name == "W2" {
						c = i / int(q.shape[1])
					}
					y.v[i] = v * s.v[c]
				}
				return y
			}
			ref := map[string]tensor64{}
			ref["h1"] = matmul(fq(env["x"], "x"), dqw("W1"))
			ref["a1"] = add(ref["h1"], initValue(orig.Graph.Initializer("b1")))
			ref["r1"] = evalNode(&onnx.Node{OpType: "Relu"}, []tensor64{ref["a1"]})
			ref["s"] = matmul(ref["r1"], env["y"])
			ref["p"] = evalNode(&onnx.Node{OpType: "Softmax"}, []tensor64{ref["s"]})
			ref["logits"] = add(matmul(fq(ref["p"], "p"), transpose2(dqw("W2"))), initValue(orig.Graph.Initializer("b2")))
			for _, name := range []string{"h1", "a1", "r1", "s", "p", "logits"} {
				for i := range ref[name].v {
					// Same float64 operations in the same order: equal up
					// to the summation order of matmul (identical here).
					if !closeTo(got[name].v[i], ref[name].v[i], 1e-12) {
						t.Fatalf("%s[%d]: quantized graph %v, reference %v", name, i, got[name].v[i], ref[name].v[i])
					}
				}
			}
		})
	}
}

// checkTopological fails when a node reads a value not yet defined.
func checkTopological(t *testing.T, g *onnx.Graph) {
	t.Helper()
	def := map[string]bool{"": true}
	for _, v := range g.Inputs {
		def[v.Name] = true
	}
	for _, it := range g.Initializers {
		def[it.Name] = true
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if !def[in] {
				t.Fatalf("node %d (%s %s) reads %q before it is defined", i, n.OpType, n.Name, in)
			}
		}
		for _, o := range n.Outputs {
			if def[o] {
				t.Fatalf("node %d (%s) redefines %q", i, n.OpType, o)
			}
			def[o] = true
		}
	}
}

func TestApplyConvAndSharedWeight(t *testing.T) {
	g := &onnx.Graph{Name: "conv"}
	g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("img", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(2), onnx.Fixed(5), onnx.Fixed(5))}
	g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("out", onnx.Float)}
	w := make([]float32, 3*2*3*3)
	for i := range w {
		w[i] = float32(i%7) - 3 + float32(i/18)
	}
	g.Initializers = []*onnx.Tensor{onnx.TensorF32("K", []int64{3, 2, 3, 3}, w), onnx.TensorF32("M", []int64{3, 3}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9})}
	g.AddNode("Conv", []string{"img", "K"}, []string{"c"}).Name = "conv"
	g.AddNode("MatMul", []string{"c", "M"}, []string{"m1"})
	g.AddNode("MatMul", []string{"m1", "M"}, []string{"out"}) // weight shared by two MatMuls
	m := &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 13)}, Graph: g}
	p, err := NewPlan(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 3 || p.Targets[0].Axis != 0 {
		t.Fatalf("targets %+v", p.Targets)
	}
	acts := map[string]Params{}
	for _, n := range p.Tensors {
		acts[n] = ActivationParams(-1, 1, Uint8)
	}
	recs, err := Apply(m, p, acts, Uint8)
	if err != nil {
		t.Fatal(err)
	}
	checkTopological(t, m.Graph)
	if len(recs) != 2 || len(recs[0].Scales) != 3 {
		t.Fatalf("weights %+v", recs)
	}
	// Conv channel c holds w[18c:18c+18]; its scale is its absmax/127.
	for c := range 3 {
		var a float64
		for _, v := range w[18*c : 18*c+18] {
			a = math.Max(a, math.Abs(float64(v)))
		}
		if got, want := recs[0].Scales[c], float32(a/127); got != want {
			t.Errorf("conv channel %d: scale %v, want %v", c, got, want)
		}
	}
	if g.Initializer("K") != nil || g.Initializer("M") != nil {
		t.Error("float weights kept after quantizing every use")
	}
	dq := 0
	for _, n := range g.Nodes {
		if n.OpType == "DequantizeLinear" && n.Inputs[0] == "M_quantized" {
			dq++
		}
	}
	if dq != 2 {
		t.Errorf("%d DequantizeLinear of the shared weight, want one per consumer", dq)
	}
}

func TestPlanOpsetAndNothing(t *testing.T) {
	m := tinyModel(1)
	m.Opsets[0].Version = 11
	p, err := NewPlan(m, Options{})
	if err != nil || p.PerChannel {
		t.Fatalf("opset 11: per-channel %v, %v", p.PerChannel, err)
	}
	acts := map[string]Params{"x": {Scale: 0.1}, "p": {Scale: 0.01}}
	recs, err := Apply(m, p, acts, Uint8)
	if err != nil || len(recs[0].Scales) != 1 || recs[0].Axis != -1 {
		t.Fatalf("opset 11 weights %+v, %v", recs, err)
	}
	for _, n := range m.Graph.Nodes {
		if n.Attr("axis") != nil && n.OpType == "DequantizeLinear" {
			t.Error("axis attribute at opset 11")
		}
	}
	g := &onnx.Graph{Inputs: []*onnx.ValueInfo{onnx.TensorValue("a", onnx.Float)}}
	g.AddNode("Relu", []string{"a"}, []string{"b"})
	g.AddNode("Softmax", []string{"b"}, []string{"c"})
	_, err = NewPlan(&onnx.Model{Opsets: []*onnx.OpsetID{onnx.Opset("", 17)}, Graph: g}, Options{})
	if !errorsIs(err, ErrNothingToQuantize) {
		t.Fatalf("no quantizable node: %v", err)
	}
	if !containsAll(err.Error(), "Relu×1", "Softmax×1") {
		t.Errorf("error does not list the op types: %v", err)
	}
}

func TestHoistConstants(t *testing.T) {
	m := tinyModel(2)
	g := m.Graph
	// Move W1 into a Constant node, as Paddle2ONNX writes weights.
	w1 := g.Initializer("W1")
	g.Initializers = g.Initializers[1:]
	c := onnx.NewNode("Constant", nil, []string{"W1"}, onnx.AttrTensor("value", w1))
	g.Nodes = append([]*onnx.Node{c}, g.Nodes...)
	if p, _ := NewPlan(m, Options{}); len(p.Targets) != 1 {
		t.Fatalf("before hoisting: %d targets, want 1 (the Gemm)", len(p.Targets))
	}
	if n := HoistConstants(m); n != 1 || g.Initializer("W1") == nil || g.Nodes[0].OpType == "Constant" {
		t.Fatalf("hoisted %d", n)
	}
	p, err := NewPlan(m, Options{})
	if err != nil || len(p.Targets) != 2 {
		t.Fatalf("after hoisting: %v, %v", p, err)
	}
	// The graph computes the same thing.
	in := tinyInputs(1, 3)
	env := map[string]tensor64{"x": to64(in[0]), "y": to64(in[1])}
	a, b := eval64(tinyModel(2).Graph, env)["logits"], eval64(g, env)["logits"]
	for i := range a.v {
		if a.v[i] != b.v[i] {
			t.Fatalf("logits[%d] changed: %v → %v", i, a.v[i], b.v[i])
		}
	}
}

// TestLeaveFloatDropsOrphans: a node left float for one bad input takes
// its other inputs out of the calibrated set when nothing else reads them.
func TestLeaveFloatDropsOrphans(t *testing.T) {
	p, err := NewPlan(tinyModel(1), Options{IncludeOps: []string{"MatMul"}})
	if err != nil {
		t.Fatal(err)
	}
	p.leaveFloat(map[string]string{"y": "NaN/Inf in activation \"y\""})
	if !slices.Equal(p.Tensors, []string{"x", "p"}) {
		t.Errorf("tensors %v, want [x p]: r1 was read only by attn_scores", p.Tensors)
	}
	if f := p.Float[len(p.Float)-1]; f.Node != "attn_scores" || !strings.Contains(f.Reason, `"y"`) {
		t.Errorf("last float node %+v", f)
	}
}
