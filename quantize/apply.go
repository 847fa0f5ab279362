package quantize

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/quantpack/quantpack/formats/onnx"
)

// WeightRecord is one quantized weight in the manifest.
type WeightRecord struct {
	Tensor string `json:"tensor"`
	Node   string `json:"node"`
	Axis   int    `json:"axis"`
	// Scales has one entry per output channel (one when per tensor); the
	// zero point of every channel is 0 (symmetric int8, codes -127..127).
	Scales    []float32 `json:"scales"`
	ZeroPoint int       `json:"zero_point"`
}

// names hands out tensor and node names that are not yet used in a graph.
type names struct{ used map[string]bool }

func newNames(g *onnx.Graph) *names {
	n := &names{used: map[string]bool{}}
	for _, v := range g.Inputs {
		n.used[v.Name] = true
	}
	for _, t := range g.Initializers {
		n.used[t.Name] = true
	}
	for _, nd := range g.Nodes {
		n.used[nd.Name] = true
		for _, s := range nd.Outputs {
			n.used[s] = true
		}
	}
	return n
}

func (n *names) get(base string) string {
	s := base
	for i := 1; n.used[s]; i++ {
		s = fmt.Sprintf("%s_%d", base, i)
	}
	n.used[s] = true
	return s
}

// Apply rewrites m's main graph as the plan says, with the activation
// parameters in acts (one per p.Tensors entry). Each activation tensor
// gets one QuantizeLinear after its producer and one DequantizeLinear per
// consuming input, placed just before the consumer: the layout ONNX
// Runtime's QDQ transformers match (a DequantizeLinear shared by two nodes
// would be duplicated by ORT anyway). Each weight is replaced by an int8
// initializer with per-channel scales and a DequantizeLinear. Nodes keep
// their order; the new ones keep the graph topologically sorted.
func Apply(m *onnx.Model, p *Plan, acts map[string]Params, t QType) ([]WeightRecord, error) {
	g := m.Graph
	nm := newNames(g)
	inits := map[string]*onnx.Tensor{}
	for _, it := range g.Initializers {
		inits[it.Name] = it
	}

	// Activation quantizers, emitted after the producer.
	type qinfo struct{ q, scale, zp string }
	quant := map[string]qinfo{}
	qnodes := map[string]*onnx.Node{} // tensor → its QuantizeLinear
	for _, name := range p.Tensors {
		pr, ok := acts[name]
		if !ok {
			return nil, fmt.Errorf("%w: no calibrated range for %q", ErrGraph, name)
		}
		qi := qinfo{q: nm.get(name + "_quantized"), scale: nm.get(name + "_scale"), zp: nm.get(name + "_zero_point")}
		g.Initializers = append(g.Initializers, onnx.ScalarF32(qi.scale, pr.Scale), zeroPoint(qi.zp, pr.ZeroPoint, t))
		n := onnx.NewNode("QuantizeLinear", []string{name, qi.scale, qi.zp}, []string{qi.q})
		n.Name = nm.get(name + "_QuantizeLinear")
		quant[name], qnodes[name] = qi, n
	}

	// Weights, quantized once each even when shared.
	type winfo struct{ q, scale, zp string }
	wq := map[string]winfo{}
	var records []WeightRecord
	floatUsers := map[string]int{} // weight → uses that stay float
	for _, nd := range g.Nodes {
		for _, in := range nd.Inputs {
			if inits[in] != nil {
				floatUsers[in]++
			}
		}
	}
	for _, tg := range p.Targets {
		if tg.Weight >= 0 {
			floatUsers[tg.Node.Inputs[tg.Weight]]--
		}
	}
	for _, tg := range p.Targets {
		if tg.Weight < 0 {
			continue
		}
		wname := tg.Node.Inputs[tg.Weight]
		if _, ok := wq[wname]; ok {
			continue
		}
		w := inits[wname]
		vals, err := floats(w)
		if err != nil {
			return nil, err
		}
		dims, axis := w.Dims, tg.Axis
		if !p.PerChannel {
			dims, axis = []int64{1, int64(len(vals))}, 0
		}
		codes, params, err := QuantizeWeights(vals, dims, axis)
		if err != nil {
			return nil, fmt.Errorf("weight %q of node %s: %w", wname, tg.ID, err)
		}
		wi := winfo{q: nm.get(wname + "_quantized"), scale: nm.get(wname + "_scale"), zp: nm.get(wname + "_zero_point")}
		scales := make([]float32, len(params))
		for i, pr := range params {
			scales[i] = pr.Scale
		}
		zps := make([]int8, len(params))
		if p.PerChannel {
			g.Initializers = append(g.Initializers, onnx.TensorF32(wi.scale, []int64{int64(len(scales))}, scales),
				onnx.TensorI8(wi.zp, []int64{int64(len(zps))}, zps))
		} else {
			g.Initializers = append(g.Initializers, onnx.ScalarF32(wi.scale, scales[0]), onnx.TensorI8(wi.zp, nil, zps))
		}
		g.Initializers = append(g.Initializers, onnx.TensorI8(wi.q, w.Dims, codes))
		wq[wname] = wi
		records = append(records, WeightRecord{Tensor: wname, Node: tg.ID, Axis: tg.Axis, Scales: scales})
		if !p.PerChannel {
			records[len(records)-1].Axis = -1
		}
	}
	// Drop float weights nobody reads any more.
	kept := g.Initializers[:0]
	for _, it := range g.Initializers {
		if _, ok := wq[it.Name]; ok && floatUsers[it.Name] <= 0 {
			continue
		}
		kept = append(kept, it)
	}
	g.Initializers = kept

	targets := map[*onnx.Node]*Target{}
	for _, tg := range p.Targets {
		targets[tg.Node] = tg
	}
	var out []*onnx.Node
	for _, in := range g.Inputs {
		if q, ok := qnodes[in.Name]; ok {
			out = append(out, q)
		}
	}
	for _, nd := range g.Nodes {
		if tg := targets[nd]; tg != nil {
			for _, a := range tg.Acts {
				qi := quant[nd.Inputs[a]]
				dq := onnx.NewNode("DequantizeLinear", []string{qi.q, qi.scale, qi.zp}, []string{nm.get(nd.Inputs[a] + "_dequantized")})
				dq.Name = nm.get(dq.Outputs[0] + "_DequantizeLinear")
				out = append(out, dq)
				nd.Inputs[a] = dq.Outputs[0]
			}
			if tg.Weight >= 0 {
				wi := wq[nd.Inputs[tg.Weight]]
				var attrs []*onnx.Attribute
				if p.PerChannel {
					attrs = append(attrs, onnx.AttrInt("axis", int64(tg.Axis)))
				}
				dq := onnx.NewNode("DequantizeLinear", []string{wi.q, wi.scale, wi.zp}, []string{nm.get(nd.Inputs[tg.Weight] + "_dequantized")}, attrs...)
				dq.Name = nm.get(dq.Outputs[0] + "_DequantizeLinear")
				out = append(out, dq)
				nd.Inputs[tg.Weight] = dq.Outputs[0]
			}
		}
		out = append(out, nd)
		for _, o := range nd.Outputs {
			if q, ok := qnodes[o]; ok {
				out = append(out, q)
			}
		}
	}
	g.Nodes = out
	return records, nil
}

func zeroPoint(name string, zp int, t QType) *onnx.Tensor {
	if t == Int8 {
		return onnx.TensorI8(name, nil, []int8{int8(zp)})
	}
	return onnx.TensorU8(name, nil, []uint8{uint8(zp)})
}

// floats reads a float32 initializer.
func floats(t *onnx.Tensor) ([]float32, error) {
	n, err := t.NumElements()
	if err != nil {
		return nil, err
	}
	b, err := t.Data()
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != 4*n {
		return nil, fmt.Errorf("%w: weight %q holds %d bytes for %d float32 values", ErrGraph, t.Name, len(b), n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
