package quantize

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/verify"
)

// A float64 interpreter for the handful of ops the hand-built test graphs
// use. It is the independent reference: QuantizeLinear and
// DequantizeLinear are written here from the ONNX operator text (round
// half to even, saturate to the zero point's type), not with the package's
// Quantize/Dequantize.

type tensor64 struct {
	shape []int64
	v     []float64
	dt    onnx.DataType
}

func numel(s []int64) int {
	n := 1
	for _, d := range s {
		n *= int(d)
	}
	return n
}

func initValue(t *onnx.Tensor) tensor64 {
	b, err := t.Data()
	if err != nil {
		panic(err)
	}
	n := numel(t.Dims)
	out := tensor64{shape: slices.Clone(t.Dims), v: make([]float64, n), dt: t.DataType}
	for i := range n {
		switch t.DataType {
		case onnx.Float:
			out.v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case onnx.Int8:
			out.v[i] = float64(int8(b[i]))
		case onnx.Uint8:
			out.v[i] = float64(b[i])
		default:
			panic(fmt.Sprint("eval: initializer type ", t.DataType))
		}
	}
	return out
}

// eval64 runs g on the inputs and returns every value by name.
func eval64(g *onnx.Graph, inputs map[string]tensor64) map[string]tensor64 {
	env := map[string]tensor64{}
	for k, v := range inputs {
		env[k] = v
	}
	for _, t := range g.Initializers {
		env[t.Name] = initValue(t)
	}
	for _, n := range g.Nodes {
		in := make([]tensor64, len(n.Inputs))
		for i, name := range n.Inputs {
			if name == "" {
				continue
			}
			x, ok := env[name]
			if !ok {
				panic(fmt.Sprintf("eval: %s reads %q before it is defined", n.OpType, name))
			}
			in[i] = x
		}
		env[n.Outputs[0]] = evalNode(n, in)
	}
	return env
}

func attrInt(n *onnx.Node, name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

func evalNode(n *onnx.Node, in []tensor64) tensor64 {
	switch n.OpType {
	case "MatMul":
		return matmul(in[0], in[1])
	case "Gemm":
		a, b := in[0], in[1]
		if attrInt(n, "transA", 0) != 0 {
			a = transpose2(a)
		}
		if attrInt(n, "transB", 0) != 0 {
			b = transpose2(b)
		}
		y := matmul(a, b)
		if len(in) > 2 && in[2].v != nil {
			y = add(y, in[2])
		}
		return y
	case "Add":
		return add(in[0], in[1])
	case "Conv":
		var b *tensor64
		if len(in) > 2 && in[2].v != nil {
			b = &in[2]
		}
		return conv2d(n, in[0], in[1], b)
	case "Relu":
		y := tensor64{shape: in[0].shape, v: make([]float64, len(in[0].v))}
		for i, x := range in[0].v {
			y.v[i] = math.Max(x, 0)
		}
		return y
	case "Softmax":
		x := in[0]
		d := int(x.shape[len(x.shape)-1])
		y := tensor64{shape: x.shape, v: make([]float64, len(x.v))}
		for r := 0; r < len(x.v); r += d {
			m := math.Inf(-1)
			for _, v := range x.v[r : r+d] {
				m = math.Max(m, v)
			}
			var s float64
			for i := range d {
				y.v[r+i] = math.Exp(x.v[r+i] - m)
				s += y.v[r+i]
			}
			for i := range d {
				y.v[r+i] /= s
			}
		}
		return y
	case "QuantizeLinear":
		x, s, z := in[0], in[1], in[2]
		lo, hi := 0.0, 255.0
		if z.dt == onnx.Int8 {
			lo, hi = -128, 127
		}
		y := tensor64{shape: x.shape, v: make([]float64, len(x.v)), dt: z.dt}
		for i, v := range x.v {
			c := perAxis(n, x.shape, i, len(s.v))
			q := math.RoundToEven(v/s.v[c]) + z.v[c]
			y.v[i] = math.Max(lo, math.Min(hi, q))
		}
		return y
	case "DequantizeLinear":
		x, s, z := in[0], in[1], in[2]
		y := tensor64{shape: x.shape, v: make([]float64, len(x.v))}
		for i, v := range x.v {
			c := perAxis(n, x.shape, i, len(s.v))
			y.v[i] = (v - z.v[c]) * s.v[c]
		}
		return y
	}
	panic("eval: op " + n.OpType)
}

// perAxis returns the channel of element i along the node's axis (default
// 1) when the scale has more than one value, else 0.
func perAxis(n *onnx.Node, shape []int64, i, scales int) int {
	if scales == 1 {
		return 0
	}
	axis := int(attrInt(n, "axis", 1))
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= int(d)
	}
	return (i / inner) % int(shape[axis])
}

// matmul multiplies [..., M, K] by a 2-D [K, N].
func matmul(a, b tensor64) tensor64 {
	k := int(a.shape[len(a.shape)-1])
	nn := int(b.shape[1])
	rows := len(a.v) / k
	shape := append(slices.Clone(a.shape[:len(a.shape)-1]), int64(nn))
	y := tensor64{shape: shape, v: make([]float64, rows*nn)}
	for r := range rows {
		for j := range nn {
			var s float64
			for i := range k {
				s += a.v[r*k+i] * b.v[i*nn+j]
			}
			y.v[r*nn+j] = s
		}
	}
	return y
}

func transpose2(a tensor64) tensor64 {
	r, c := int(a.shape[0]), int(a.shape[1])
	y := tensor64{shape: []int64{int64(c), int64(r)}, v: make([]float64, len(a.v))}
	for i := range r {
		for j := range c {
			y.v[j*r+i] = a.v[i*c+j]
		}
	}
	return y
}

// add adds b, of the same shape or broadcast along the last dimension.
func add(a, b tensor64) tensor64 {
	y := tensor64{shape: a.shape, v: make([]float64, len(a.v))}
	for i := range a.v {
		y.v[i] = a.v[i] + b.v[i%len(b.v)]
	}
	return y
}

// evalRunner is a verify.Runner over eval64: calibration without ONNX
// Runtime. Outputs are float32, as ORT would return them.
type evalRunner struct {
	m *onnx.Model
	// poison, when set, replaces a tensor's values with NaN.
	poison string
}

func (r *evalRunner) Inputs() []verify.IOInfo  { return graphInputs(r.m) }
func (r *evalRunner) Outputs() []verify.IOInfo { return nil }
func (r *evalRunner) Close() error             { return nil }

func (r *evalRunner) Run(_ context.Context, in []verify.Tensor) ([]verify.Tensor, error) {
	env := map[string]tensor64{}
	for _, t := range in {
		x := tensor64{shape: t.Shape, v: make([]float64, len(t.F32))}
		for i, v := range t.F32 {
			x.v[i] = float64(v)
		}
		env[t.Name] = x
	}
	vals := eval64(r.m.Graph, env)
	var out []verify.Tensor
	for _, o := range r.m.Graph.Outputs {
		x := vals[o.Name]
		t := verify.Tensor{Name: o.Name, DType: verify.Float32, Shape: x.shape, F32: make([]float32, len(x.v))}
		for i, v := range x.v {
			t.F32[i] = float32(v)
			if o.Name == r.poison {
				t.F32[i] = float32(math.NaN())
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func evalOpen(poison string) OpenFunc {
	return func(b []byte, _ string) (verify.Runner, error) {
		m, err := onnx.Unmarshal(b)
		if err != nil {
			return nil, err
		}
		return &evalRunner{m: m, poison: poison}, nil
	}
}

// conv2d is a direct 2-D convolution with groups, pads and strides
// (dilation 1).
func conv2d(n *onnx.Node, x, w tensor64, b *tensor64) tensor64 {
	ints := func(name string, def ...int64) []int64 {
		if a := n.Attr(name); a != nil {
			return a.Ints
		}
		return def
	}
	g := int(attrInt(n, "group", 1))
	pads, strides := ints("pads", 0, 0, 0, 0), ints("strides", 1, 1)
	N, C, H, W := int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
	M, cg, kh, kw := int(w.shape[0]), int(w.shape[1]), int(w.shape[2]), int(w.shape[3])
	oh := (H+int(pads[0]+pads[2])-kh)/int(strides[0]) + 1
	ow := (W+int(pads[1]+pads[3])-kw)/int(strides[1]) + 1
	y := tensor64{shape: []int64{int64(N), int64(M), int64(oh), int64(ow)}, v: make([]float64, N*M*oh*ow)}
	for nb := range N {
		for m := range M {
			grp := m / (M / g)
			for i := range oh {
				for j := range ow {
					var s float64
					if b != nil {
						s = b.v[m]
					}
					for c := range cg {
						ci := grp*cg + c
						for u := range kh {
							for v := range kw {
								yy, xx := i*int(strides[0])-int(pads[0])+u, j*int(strides[1])-int(pads[1])+v
								if yy < 0 || yy >= H || xx < 0 || xx >= W {
									continue
								}
								s += x.v[((nb*C+ci)*H+yy)*W+xx] * w.v[((m*cg+c)*kh+u)*kw+v]
							}
						}
					}
					y.v[((nb*M+m)*oh+i)*ow+j] = s
				}
			}
		}
	}
	return y
}
