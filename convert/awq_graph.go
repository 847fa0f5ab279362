package convert

import (
	"context"
	"fmt"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/verify"
)

// Where awq's folding tables come from: the FP32 graph export builds for
// the checkpoint, not a list per family. Every Linear is a MatMul reading
// the initializer "<name>.T" (its transposed weight, see paramT); its first
// input is the activation to calibrate. Linears reading the same activation
// form a group and share one vector of scales. A group can fold 1/s into
//
//   - the LayerNormalization that produces its input (weight "<P>.weight",
//     bias "<P>.bias"), when every consumer of that output is one of the
//     group's Linears: ViT/DeiT/BEiT/MobileViT layernorm_before → query, key,
//     value and layernorm_after → intermediate.dense; DINOv2 norm1, norm2 →
//     mlp.fc1 or mlp.weights_in;
//   - the value projection's output rows and bias, for an attention output
//     dense "<A>.output.dense" whose only input is the attention context of
//     "<A>.attention.value": softmax(QKᵀ + bias)·V is linear in V channel by
//     channel (heads are split and merged by reshapes that keep the channel
//     order), so scaling V's output channel c scales context channel c;
//   - nothing (the MLP's second dense after GELU/SiLU): an explicit Mul in an
//     export, or left unscaled in a convert artifact.
//
// (Convolutions stay int8 at int4/nf4, so awq never meets one.)

// awqGroupSpec is one group found in the graph.
type awqGroupSpec struct {
	input   string   // the activation (graph value) the Linears read
	linears []string // weight names, in graph order
	fold    string   // awqFoldNorm, awqFoldValue, awqFoldMul or awqFoldNone
	into    string   // LayerNorm prefix, or the value weight's name
}

// awqGroups finds the groups of the 4-bit Linears of items in m.
func awqGroups(m *onnx.Model, items map[string]*item, explicitMul bool) ([]*awqGroupSpec, error) {
	g := m.Graph
	consumers := map[string][]*onnx.Node{}
	producer := map[string]*onnx.Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			consumers[in] = append(consumers[in], n)
		}
		for _, out := range n.Outputs {
			producer[out] = n
		}
	}
	// linearOf names the Linear weight a node applies, or "".
	linearOf := func(n *onnx.Node) string {
		if n.OpType != "MatMul" || n.Domain != "" || len(n.Inputs) != 2 || !strings.HasSuffix(n.Inputs[1], ".weight.T") {
			return ""
		}
		name := strings.TrimSuffix(n.Inputs[1], ".T")
		if it := items[name]; it == nil || (it.role != RoleLinear && it.role != RoleHead && it.role != RoleKeep) {
			return ""
		}
		return name
	}
	var groups []*awqGroupSpec
	byInput := map[string]*awqGroupSpec{}
	for _, n := range g.Nodes {
		name := linearOf(n)
		if name == "" || !is4bit(items[name]) {
			continue
		}
		x := n.Inputs[0]
		if gr := byInput[x]; gr != nil {
			gr.linears = append(gr.linears, name)
			continue
		}
		gr := &awqGroupSpec{input: x, linears: []string{name}}
		byInput[x] = gr
		groups = append(groups, gr)
	}
	for _, gr := range groups {
		// Every consumer of the input must be a Linear: each is then given
		// the same scales (a float one too, harmlessly), and the fold
		// changes nothing else.
		var all []string
		onlyLinears := true
		for _, c := range consumers[gr.input] {
			if l := linearOf(c); l != "" {
				all = append(all, l)
			} else {
				onlyLinears = false
			}
		}
		gr.fold = awqFoldNone
		if explicitMul {
			gr.fold = awqFoldMul
		}
		if !onlyLinears {
			continue
		}
		gr.linears = all
		if p := producer[gr.input]; p != nil && p.OpType == "LayerNormalization" && len(p.Inputs) == 3 {
			ln := strings.TrimSuffix(p.Inputs[1], ".weight")
			if p.Inputs[1] == ln+".weight" && p.Inputs[2] == ln+".bias" && items[ln+".weight"] != nil && items[ln+".bias"] != nil &&
				isFloatScheme(items[ln+".weight"].scheme) && isFloatScheme(items[ln+".bias"].scheme) {
				gr.fold, gr.into = awqFoldNorm, ln
				continue
			}
		}
		if len(all) == 1 && strings.HasSuffix(all[0], ".attention.output.dense.weight") {
			v := strings.TrimSuffix(all[0], ".output.dense.weight") + ".attention.value.weight"
			if it := items[v]; it != nil && it.role == RoleLinear && usedByMatMul(consumers, v+".T") {
				gr.fold, gr.into = awqFoldValue, v
			}
		}
	}
	return groups, nil
}

func usedByMatMul(consumers map[string][]*onnx.Node, init string) bool {
	for _, n := range consumers[init] {
		if n.OpType == "MatMul" {
			return true
		}
	}
	return false
}

func is4bit(it *item) bool { return it != nil && (it.scheme == SchemeInt4 || it.scheme == SchemeNF4) }

// awqCalibrate runs the FP32 graph m over the calibration images with the
// groups' inputs as extra outputs (quantize's streaming calibration) and
// returns their per-channel statistics and a record of the images used.
func awqCalibrate(ctx context.Context, m *onnx.Model, modelDir string, groups []*awqGroupSpec, c *Calibration) (map[string]*quantize.ChannelStats, quantize.SourceInfo, error) {
	var info quantize.SourceInfo
	if c == nil || c.Open == nil {
		return nil, info, fmt.Errorf("convert: internal: awq without a calibration runtime")
	}
	pre, err := verify.LoadPreprocessor(modelDir)
	if err != nil {
		return nil, info, fmt.Errorf("awq calibration preprocessing: %w", err)
	}
	if len(m.Graph.Inputs) != 1 {
		return nil, info, fmt.Errorf("convert: internal: awq graph has %d inputs", len(m.Graph.Inputs))
	}
	in := m.Graph.Inputs[0]
	io := verify.IOInfo{Name: in.Name, DType: verify.Float32}
	for _, d := range in.Shape {
		if d.Param == "" && d.IsKnown() {
			io.Shape = append(io.Shape, d.Value)
		} else {
			io.Shape = append(io.Shape, -1)
		}
	}
	n := c.Samples
	if n == 0 {
		n = quantize.DefaultSamples
	}
	src, err := quantize.NewImageSource(c.Images, pre, io, n, quantize.DefaultBatch)
	if err != nil {
		return nil, info, err
	}
	defer src.Close()
	stats := map[string]*quantize.ChannelStats{}
	acc := map[string]quantize.Accumulator{}
	var tensors []string
	for _, gr := range groups {
		if stats[gr.input] == nil {
			stats[gr.input] = quantize.NewChannelStats()
			acc[gr.input] = stats[gr.input]
			tensors = append(tensors, gr.input)
		}
	}
	if err := quantize.CollectInto(ctx, m, "", tensors, c.Open, src, acc); err != nil {
		return nil, info, err
	}
	return stats, src.Info(), nil
}

// awqInput is the export graph's hook: a Linear whose scales nothing could
// absorb gets its input multiplied by 1/s, channel by channel, right before
// the quantized MatMul (export only; a convert artifact has no such layer).
func (b *builder) awqInput(x, prefix string) string {
	inv := b.opt.awqMul[prefix+".weight"]
	if inv == nil || b.err != nil {
		return x
	}
	return b.mul(x, b.constF(prefix+".awq_inv_scale", []int64{int64(len(inv))}, inv))
}
