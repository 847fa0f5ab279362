package quantize

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
)

// Op types the pass quantizes by default when they have a constant float32
// weight (MatMul input B, Gemm input B, Conv input W).
var weightOps = map[string]bool{"MatMul": true, "Gemm": true, "Conv": true}

// keptFloat are op types left float by default, with the reason written
// to the manifest. The FQ-ViT lesson (Lin et al., 2022): quantizing
// LayerNorm inputs and Softmax outputs with plain per-tensor ranges is what
// collapses ViT accuracy; the linear layers carry almost all of the compute.
var keptFloat = map[string]string{
	"LayerNormalization":     "LayerNorm: per-channel outliers make a per-tensor range lossy (FQ-ViT)",
	"SkipLayerNormalization": "LayerNorm: per-channel outliers make a per-tensor range lossy (FQ-ViT)",
	"Softmax":                "Softmax: attention probabilities are power-law distributed (FQ-ViT)",
	"Erf":                    "GELU: cheap elementwise op, no speed to gain",
	"Gelu":                   "GELU: cheap elementwise op, no speed to gain",
	"FastGelu":               "GELU: cheap elementwise op, no speed to gain",
	"BiasGelu":               "GELU: cheap elementwise op, no speed to gain",
	"MultiHeadAttention":     "attention core (QK^T, softmax, ·V) kept float; its projections are separate MatMuls",
	"Attention":              "attention core kept float",
}

// reasonAttentionCore is the reason given to a MatMul whose two inputs are
// both activations: in a transformer that is Q·K^T or P·V.
const reasonAttentionCore = "no constant weight (attention core: both inputs are activations)"

// Options control the graph pass and the calibration.
type Options struct {
	// ActivationType is the integer type of activations (default Uint8).
	ActivationType QType
	// Exclude lists globs (path.Match syntax) over node names, node
	// output names and input tensor names; a node any of them matches
	// stays float.
	Exclude []string
	// IncludeOps lists extra op types whose float activation inputs get
	// QDQ too (for example Softmax, or MatMul without a constant weight).
	IncludeOps []string
}

// Target is a node the pass quantizes.
type Target struct {
	Node *onnx.Node
	ID   string // the node's name, or OpType#index when it has none
	// Acts are the indices of the inputs quantized per tensor.
	Acts []int
	// Weight is the index of the constant weight input, -1 when none.
	Weight int
	// Axis is the weight's output-channel axis.
	Axis int
}

// FloatNode is a node left float and why.
type FloatNode struct {
	Node   string `json:"node"`
	OpType string `json:"op_type"`
	Reason string `json:"reason"`
}

// Plan is what the pass will do to a graph: the targets, the activation
// tensors to calibrate and the nodes left float.
type Plan struct {
	Targets []*Target
	// Tensors are the activation tensors to calibrate, in graph order.
	Tensors []string
	Float   []FloatNode
	// OpCounts counts every op type of the graph (domain-qualified when
	// not the default domain).
	OpCounts map[string]int
	// PerChannel is false when the default-domain opset is below 13, where
	// DequantizeLinear has no axis: weights are then quantized per tensor.
	PerChannel bool
	Opset      int64
}

// NodeID names node i of g: its name, or OpType#i.
func NodeID(n *onnx.Node, i int) string {
	if n.Name != "" {
		return n.Name
	}
	return fmt.Sprintf("%s#%d", n.OpType, i)
}

func opKey(n *onnx.Node) string {
	if n.Domain == "" || n.Domain == "ai.onnx" {
		return n.OpType
	}
	return n.Domain + "." + n.OpType
}

// defaultOpset returns the model's opset of the default domain.
func defaultOpset(m *onnx.Model) int64 {
	for _, o := range m.Opsets {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return o.Version
		}
	}
	return 0
}

// CheckGlobs reports the first malformed pattern.
func CheckGlobs(globs []string) error {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%w: --exclude %q: %v", ErrOption, g, err)
		}
	}
	return nil
}

func excluded(n *onnx.Node, id string, globs []string) (string, bool) {
	names := append([]string{id}, n.Outputs...)
	names = append(names, n.Inputs...)
	for _, g := range globs {
		for _, s := range names {
			if s == "" {
				continue
			}
			if ok, _ := path.Match(g, s); ok {
				return fmt.Sprintf("excluded by --exclude %q (matches %q)", g, s), true
			}
		}
	}
	return "", false
}

// NewPlan decides what to quantize in m's main graph. Subgraphs (If,
// Loop) are left alone.
func NewPlan(m *onnx.Model, opt Options) (*Plan, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("%w: model has no graph", ErrGraph)
	}
	if err := CheckGlobs(opt.Exclude); err != nil {
		return nil, err
	}
	g := m.Graph
	p := &Plan{OpCounts: map[string]int{}, Opset: defaultOpset(m)}
	if p.Opset < 10 {
		return nil, fmt.Errorf("%w: default-domain opset %d; QuantizeLinear needs opset 10 or later", ErrUnsupported, p.Opset)
	}
	p.PerChannel = p.Opset >= 13
	inits := map[string]*onnx.Tensor{}
	for _, t := range g.Initializers {
		inits[t.Name] = t
	}
	// An initializer that is also a graph input can be overridden at run
	// time (IR < 4 models): it is not a constant.
	for _, in := range g.Inputs {
		delete(inits, in.Name)
	}
	include := map[string]bool{}
	for _, op := range opt.IncludeOps {
		include[op] = true
	}
	isAct := func(name string) bool { return name != "" && inits[name] == nil }
	seen := map[string]bool{}
	weightAxis := map[string]int{} // weight initializer → axis it was given
	for i, n := range g.Nodes {
		p.OpCounts[opKey(n)]++
		id := NodeID(n, i)
		inDefault := n.Domain == "" || n.Domain == "ai.onnx"
		op := n.OpType
		if !inDefault {
			op = opKey(n)
		}
		isWeightOp := inDefault && weightOps[n.OpType]
		if !isWeightOp && !include[op] && !include[n.OpType] {
			if reason, ok := keptFloat[n.OpType]; ok {
				p.Float = append(p.Float, FloatNode{Node: id, OpType: op, Reason: reason})
			}
			continue
		}
		if reason, ok := excluded(n, id, opt.Exclude); ok {
			p.Float = append(p.Float, FloatNode{Node: id, OpType: op, Reason: reason})
			continue
		}
		t := &Target{Node: n, ID: id, Weight: -1}
		if isWeightOp {
			wi, axis, reason := weightInput(n, inits)
			if reason == "" {
				if prev, ok := weightAxis[n.Inputs[wi]]; ok && prev != axis {
					reason = fmt.Sprintf("weight %q is shared with another node along a different axis", n.Inputs[wi])
				}
			}
			switch {
			case reason == "":
				t.Weight, t.Axis = wi, axis
				weightAxis[n.Inputs[wi]] = axis
				for _, a := range activationInputs(n) {
					if isAct(n.Inputs[a]) {
						t.Acts = append(t.Acts, a)
					}
				}
			case include[op] || include[n.OpType]:
				// Widened: quantize whatever float activations it has.
				for _, a := range activationInputs(n) {
					if isAct(n.Inputs[a]) {
						t.Acts = append(t.Acts, a)
					}
				}
			default:
				p.Float = append(p.Float, FloatNode{Node: id, OpType: op, Reason: reason})
				continue
			}
		} else {
			for a, name := range n.Inputs {
				if isAct(name) {
					t.Acts = append(t.Acts, a)
				}
			}
		}
		if t.Weight < 0 && len(t.Acts) == 0 {
			p.Float = append(p.Float, FloatNode{Node: id, OpType: op, Reason: "no float activation input"})
			continue
		}
		p.Targets = append(p.Targets, t)
		for _, a := range t.Acts {
			if name := n.Inputs[a]; !seen[name] {
				seen[name] = true
				p.Tensors = append(p.Tensors, name)
			}
		}
	}
	if len(p.Targets) == 0 {
		return p, fmt.Errorf("%w: the graph has %s; quantize needs MatMul or Gemm with a constant float32 weight, or Conv (--include-ops widens the set)",
			ErrNothingToQuantize, p.opList())
	}
	return p, nil
}

// activationInputs are the inputs of a weight op that carry activations.
func activationInputs(n *onnx.Node) []int {
	switch n.OpType {
	case "MatMul":
		return []int{0, 1}[:min(2, len(n.Inputs))]
	default: // Gemm A, Conv X
		return []int{0}
	}
}

// weightInput finds the constant float32 weight of a MatMul, Gemm or Conv
// and its output-channel axis, or says why there is none.
func weightInput(n *onnx.Node, inits map[string]*onnx.Tensor) (idx, axis int, reason string) {
	if len(n.Inputs) < 2 {
		return 0, 0, "fewer than two inputs"
	}
	w := inits[n.Inputs[1]]
	if w == nil {
		if n.OpType == "MatMul" {
			return 0, 0, reasonAttentionCore
		}
		return 0, 0, "weight is not a constant initializer"
	}
	if w.DataType != onnx.Float {
		return 0, 0, fmt.Sprintf("weight %q is %s, not float32", w.Name, w.DataType)
	}
	rank := len(w.Dims)
	switch n.OpType {
	case "MatMul":
		if rank != 2 {
			return 0, 0, fmt.Sprintf("weight %q has rank %d, not 2", w.Name, rank)
		}
		// The activation must be input 0: MatMul(W, x) has no per-output-
		// channel layout ORT fuses.
		if inits[n.Inputs[0]] != nil {
			return 0, 0, "both inputs are constants"
		}
		return 1, 1, ""
	case "Gemm":
		if rank != 2 {
			return 0, 0, fmt.Sprintf("weight %q has rank %d, not 2", w.Name, rank)
		}
		if a := n.Attr("transB"); a != nil && a.I != 0 {
			return 1, 0, ""
		}
		return 1, 1, ""
	case "Conv":
		if rank < 3 {
			return 0, 0, fmt.Sprintf("weight %q has rank %d, want ≥ 3", w.Name, rank)
		}
		return 1, 0, ""
	}
	return 0, 0, "not a weight op"
}

func (p *Plan) opList() string {
	keys := make([]string, 0, len(p.OpCounts))
	for k := range p.OpCounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s×%d", k, p.OpCounts[k])
	}
	if b.Len() == 0 {
		return "no nodes"
	}
	return "ops " + b.String()
}

// leaveFloat drops every target that reads one of the tensors in bad and
// records why, and drops those tensors from the calibrated set.
func (p *Plan) leaveFloat(bad map[string]string) {
	if len(bad) == 0 {
		return
	}
	p.drop(func(t *Target) string {
		for _, a := range t.Acts {
			if r, ok := bad[t.Node.Inputs[a]]; ok {
				return r
			}
		}
		return ""
	})
}

// leaveFloatNodes drops the targets whose ID is a key of reasons, with
// that reason.
func (p *Plan) leaveFloatNodes(reasons map[string]string) {
	if len(reasons) == 0 {
		return
	}
	p.drop(func(t *Target) string { return reasons[t.ID] })
}

// drop removes every target for which why returns a reason, records it in
// Float, and keeps only the tensors some remaining target still reads (a
// dropped node's other inputs may have no quantized reader left).
func (p *Plan) drop(why func(*Target) string) {
	keep := p.Targets[:0]
	for _, t := range p.Targets {
		reason := why(t)
		if reason == "" {
			keep = append(keep, t)
			continue
		}
		p.Float = append(p.Float, FloatNode{Node: t.ID, OpType: opKey(t.Node), Reason: reason})
	}
	p.Targets = keep
	read := map[string]bool{}
	for _, t := range p.Targets {
		for _, a := range t.Acts {
			read[t.Node.Inputs[a]] = true
		}
	}
	p.Tensors = slices.DeleteFunc(p.Tensors, func(s string) bool { return !read[s] })
}

// HoistConstants turns Constant nodes that hold a tensor (attribute
// "value") into initializers of the same name, in place: the same graph,
// but weights that exporters such as Paddle2ONNX emit as Constant nodes
// become visible to the plan as constant weights. It returns how many
// nodes it moved. Names that are graph inputs are left alone (an input
// may not also be produced by a node).
func HoistConstants(m *onnx.Model) int {
	g := m.Graph
	inputs := map[string]bool{}
	for _, v := range g.Inputs {
		inputs[v.Name] = true
	}
	n := 0
	kept := g.Nodes[:0]
	for _, nd := range g.Nodes {
		if nd.OpType == "Constant" && (nd.Domain == "" || nd.Domain == "ai.onnx") && len(nd.Attrs) == 1 && len(nd.Outputs) == 1 {
			if a := nd.Attrs[0]; a.Name == "value" && a.T != nil && !inputs[nd.Outputs[0]] {
				t := *a.T
				t.Name = nd.Outputs[0]
				g.Initializers = append(g.Initializers, &t)
				n++
				continue
			}
		}
		kept = append(kept, nd)
	}
	g.Nodes = kept
	return n
}
