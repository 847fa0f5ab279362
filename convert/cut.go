package convert

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
)

// Cutting a variant graph: a variant that changes one layer computes
// exactly what the FP32 graph computes up to that layer. A value that every
// path from the input to the outputs passes through (a bottleneck: the
// residual stream between transformer blocks, a feature map between
// MobileViT stages) can then be fed from a stored FP32 run, and the variant
// graph cut there runs only what follows. The builder is deterministic, so
// the FP32 graph and a variant graph are identical — node for node, name
// for name — up to the first node that reads the changed layer's weight.

// Cuts returns, for each layer, the bottleneck value of the FP32 graph
// produced last before the first node that reads that layer's weight, with
// the index of its producer (a rough measure of the work it saves); a layer
// with no bottleneck before it is absent (its variant runs whole).
func (v *Variants) Cuts() (map[string]string, map[string]int, error) {
	m, err := v.fp32Model()
	if err != nil {
		return nil, nil, err
	}
	chain, at := bottlenecks(m.Graph)
	cuts, pos := map[string]string{}, map[string]int{}
	for _, l := range v.layers {
		first := firstUse(m.Graph, prefixOf(l.Name)+".")
		best := ""
		for _, val := range chain {
			if at[val] < first {
				best = val
			}
		}
		if best != "" {
			cuts[l.Name], pos[l.Name] = best, at[best]
		}
	}
	return cuts, pos, nil
}

func (v *Variants) fp32Model() (*onnx.Model, error) {
	gopt := v.gopt
	return buildModel(v.src, v.compose(nil, FP32), &gopt)
}

// BuildFP32Outputs returns the FP32 graph with the named values as extra
// outputs (after the model's own).
func (v *Variants) BuildFP32Outputs(values []string) ([]byte, error) {
	m, err := v.fp32Model()
	if err != nil {
		return nil, err
	}
	for _, val := range values {
		// No shape: ONNX Runtime infers it (an empty Shape would say rank 0).
		m.Graph.Outputs = append(m.Graph.Outputs, &onnx.ValueInfo{Name: val, ElemType: onnx.Float})
	}
	return v.encode(m)
}

// BuildCut is Build with the graph cut at value cut: cut becomes the
// graph's only input, float32 [batch, dims...], and every node it does not
// need is dropped. cut must be a bottleneck produced before the first node
// of any layer assign changes (Cuts gives them).
func (v *Variants) BuildCut(assign map[string]Precision, rest Precision, cut string, dims []int64) ([]byte, error) {
	for name, p := range assign {
		if _, err := v.source(p); err != nil {
			return nil, fmt.Errorf("%w (tensor %q)", err, name)
		}
	}
	gopt := v.gopt
	m, err := buildModel(v.src, v.compose(assign, rest), &gopt)
	if err != nil {
		return nil, err
	}
	if err := cutGraph(m.Graph, cut, dims); err != nil {
		return nil, err
	}
	return v.encode(m)
}

// flowValues are the values computed from the graph inputs (not from
// initializers and constants alone), with the index of each one's producer
// (-1 for the inputs).
func flowValues(g *onnx.Graph) map[string]int {
	flow := map[string]int{}
	for _, in := range g.Inputs {
		flow[in.Name] = -1
	}
	for i, n := range g.Nodes {
		if slices.ContainsFunc(n.Inputs, func(s string) bool { _, ok := flow[s]; return ok && s != "" }) {
			for _, o := range n.Outputs {
				if o != "" {
					flow[o] = i
				}
			}
		}
	}
	return flow
}

// bottlenecks returns the values every input-to-output path passes through,
// in order, and each one's producer index. Dominators of a DAG in
// topological order: a value's dominator chain is its own name after the
// longest common prefix of its producer's flow inputs' chains.
func bottlenecks(g *onnx.Graph) ([]string, map[string]int) {
	flow := flowValues(g)
	dom := map[string][]string{}
	for _, in := range g.Inputs {
		dom[in.Name] = []string{in.Name}
	}
	common := func(chains [][]string) []string {
		if len(chains) == 0 {
			return nil
		}
		c := chains[0]
		for _, o := range chains[1:] {
			k := 0
			for k < len(c) && k < len(o) && c[k] == o[k] {
				k++
			}
			c = c[:k]
		}
		return c
	}
	for _, n := range g.Nodes {
		var ins [][]string
		for _, s := range n.Inputs {
			if d, ok := dom[s]; ok && s != "" {
				ins = append(ins, d)
			}
		}
		if len(ins) == 0 {
			continue
		}
		c := common(ins)
		for _, o := range n.Outputs {
			if o != "" {
				dom[o] = append(slices.Clip(c), o)
			}
		}
	}
	var outs [][]string
	for _, o := range g.Outputs {
		if d, ok := dom[o.Name]; ok {
			outs = append(outs, d)
		}
	}
	chain := common(outs)
	// The graph input itself is no cut; neither is a graph output.
	var out []string
	for _, val := range chain {
		if flow[val] >= 0 && !slices.ContainsFunc(g.Outputs, func(o *onnx.ValueInfo) bool { return o.Name == val }) {
			out = append(out, val)
		}
	}
	return out, flow
}

// firstUse is the index of the first node with an input named with prefix
// (a layer's initializers all start with the layer's prefix); len(nodes)
// when none does.
func firstUse(g *onnx.Graph, prefix string) int {
	for i, n := range g.Nodes {
		if slices.ContainsFunc(n.Inputs, func(s string) bool { return strings.HasPrefix(s, prefix) }) {
			return i
		}
	}
	return len(g.Nodes)
}

// cutGraph makes value cut the graph's only input and drops the nodes and
// initializers the outputs no longer need.
func cutGraph(g *onnx.Graph, cut string, dims []int64) error {
	need := map[string]bool{}
	for _, o := range g.Outputs {
		need[o.Name] = true
	}
	keep := make([]bool, len(g.Nodes))
	produced := false
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !slices.ContainsFunc(n.Outputs, func(o string) bool { return need[o] }) {
			continue
		}
		if slices.Contains(n.Outputs, cut) {
			produced = true
			continue // fed from outside now
		}
		keep[i] = true
		for _, s := range n.Inputs {
			if s != "" {
				need[s] = true
			}
		}
	}
	if !produced {
		return fmt.Errorf("convert: internal: cut value %q is not produced before the outputs", cut)
	}
	var nodes []*onnx.Node
	for i, n := range g.Nodes {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	for _, in := range g.Inputs {
		if need[in.Name] {
			return fmt.Errorf("convert: internal: %q is not a bottleneck: the cut graph still reads input %q", cut, in.Name)
		}
	}
	g.Nodes = nodes
	var inits []*onnx.Tensor
	for _, t := range g.Initializers {
		if need[t.Name] {
			inits = append(inits, t)
		}
	}
	g.Initializers = inits
	shape := []onnx.Dim{onnx.Symbolic("batch")}
	for _, d := range dims {
		shape = append(shape, onnx.Fixed(d))
	}
	g.Inputs = []*onnx.ValueInfo{onnx.TensorValue(cut, onnx.Float, shape...)}
	g.ValueInfo = nil
	return nil
}
