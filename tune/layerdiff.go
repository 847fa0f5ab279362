package tune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
)

// DefaultDiffSamples is how many inputs DiffLayers runs by default: a few
// are enough to rank layers whose error differs by orders of magnitude,
// and each costs one run of each model with every layer's values kept.
const DefaultDiffSamples = 4

// DiffOptions configure DiffLayers.
type DiffOptions struct {
	// Baseline and Candidate are export directories or .onnx files, as
	// verify takes them.
	Baseline, Candidate string
	// Images is verify's ImageFolder ("" for synthetic inputs of Seed);
	// Samples of them are used, spread evenly (0: DefaultDiffSamples).
	Images  string
	Samples int
	Seed    uint64
	// Open opens a model held in memory whose external data lie in dir.
	Open func(model []byte, dir string) (verify.Runner, error)
}

// layerOps are the operators that apply a layer's weight: float ones and
// every quantized form quantpack and ONNX Runtime's tools write.
var layerOps = map[string]bool{"MatMul": true, "Gemm": true, "Conv": true, "ConvTranspose": true, "FusedMatMul": true,
	"MatMulNBits": true, "MatMulBnb4": true, "DynamicQuantizeMatMul": true, "MatMulInteger": true,
	"MatMulIntegerToFloat": true, "QLinearMatMul": true, "QLinearConv": true, "ConvInteger": true}

// passOps carry a value or a weight through unchanged but for its
// encoding: a layer's input is traced back through them to the float value
// before its quantization or cast, a weight to its initializer.
var passOps = map[string]bool{"Cast": true, "QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true,
	"Transpose": true, "Reshape": true, "Identity": true}

// graphLayer is one layer of a graph: the values entering and leaving it.
type graphLayer struct {
	key     string // weight name without ".weight…"
	op      string
	in, out *onnx.ValueInfo
}

// findLayers lists g's layers in node order. A layer is a node of
// layerOps whose weight traces back to an initializer named "X.weight…";
// its key is X, so that the FP32 graph's MatMul on "X.weight.T" and the
// int4 graph's MatMulNBits on "X.weight" are the same layer. Its output
// includes the bias Add that follows it when the bias is X's.
func findLayers(g *onnx.Graph) []graphLayer {
	inits := map[string]*onnx.Tensor{}
	for _, t := range g.Initializers {
		inits[t.Name] = t
	}
	producer := map[string]*onnx.Node{}
	consumers := map[string][]*onnx.Node{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = n
		}
		for _, in := range n.Inputs {
			consumers[in] = append(consumers[in], n)
		}
	}
	// source follows v back through passOps to an initializer (weights)
	// or to the first value that is not a pass (activations).
	source := func(v string) (string, *onnx.Tensor) {
		for range 16 {
			if t := inits[v]; t != nil {
				return v, t
			}
			p := producer[v]
			if p == nil || !passOps[p.OpType] || len(p.Inputs) == 0 {
				return v, nil
			}
			v = p.Inputs[0]
		}
		return v, nil
	}
	var out []graphLayer
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		if !layerOps[n.OpType] || len(n.Inputs) < 2 || len(n.Outputs) == 0 {
			continue
		}
		var key string
		elem := onnx.Float
		for _, in := range n.Inputs[1:] {
			name, t := source(in)
			if t == nil {
				continue
			}
			if i := strings.Index(name, ".weight"); i > 0 && key == "" {
				key = name[:i]
			}
			// The activations' type is that of the layer's float
			// initializers (weights, scales, bias): fp16 in an fp16 graph.
			if (t.DataType == onnx.Float16 || t.DataType == onnx.BFloat16) && elem == onnx.Float {
				elem = t.DataType
			}
		}
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		inName, _ := source(n.Inputs[0])
		outName := n.Outputs[0]
		if cs := consumers[outName]; len(cs) == 1 && cs[0].OpType == "Add" && len(cs[0].Outputs) == 1 {
			for _, in := range cs[0].Inputs {
				if name, t := source(in); t != nil && strings.HasPrefix(name, key+".bias") {
					outName = cs[0].Outputs[0]
				}
			}
		}
		// A graph input (traced back past its Cast) is float32, as every
		// Runner exchanges.
		inElem := elem
		if producer[inName] == nil {
			inElem = onnx.Float
		}
		out = append(out, graphLayer{key: key, op: n.OpType, in: &onnx.ValueInfo{Name: inName, ElemType: inElem},
			out: &onnx.ValueInfo{Name: outName, ElemType: elem}})
	}
	return out
}

// exposed is a model opened with its layers' values as extra outputs.
type exposed struct {
	r      verify.Runner
	layers map[string]graphLayer
}

func expose(path, dir string, open func([]byte, string) (verify.Runner, error)) (*exposed, []graphLayer, error) {
	m, err := onnx.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	ls := findLayers(m.Graph)
	var outs []*onnx.ValueInfo
	for _, l := range ls {
		outs = append(outs, l.in, l.out)
	}
	b, err := m.MarshalWithOutputs(outs)
	if err != nil {
		return nil, nil, err
	}
	r, err := open(b, dir)
	if err != nil {
		return nil, nil, err
	}
	e := &exposed{r: r, layers: map[string]graphLayer{}}
	for _, l := range ls {
		e.layers[l.key] = l
	}
	return e, ls, nil
}

// diffAcc sums one layer's figures over samples.
type diffAcc struct {
	inErr, outErr, inCos, outCos float64
}

// DiffLayers compares the baseline's and the candidate's layers on a few of
// verify's inputs: both graphs run with every layer's input and output
// exposed (the calibration pass's way of reading activations), layers are
// matched by weight name, and each is ranked by the relative error it
// introduces — its output's error against the baseline minus its input's —
// so the layer where accuracy is lost comes first, not the layers after it
// that carry the error on. Weight SQNR from the candidate's artifact
// statistics (WeightErrors) is added where it can be had; its absence is
// noted, not an error.
func DiffLayers(ctx context.Context, opt DiffOptions) ([]verify.LayerDelta, *verify.LayerDiff, error) {
	if opt.Open == nil {
		return nil, nil, fmt.Errorf("%w: no model opener", ErrOption)
	}
	n := opt.Samples
	if n <= 0 {
		n = DefaultDiffSamples
	}
	bm, bdir, err := verify.ModelPaths(opt.Baseline)
	if err != nil {
		return nil, nil, err
	}
	cm, cdir, err := verify.ModelPaths(opt.Candidate)
	if err != nil {
		return nil, nil, err
	}
	in, err := loadInputs(ctx, bdir, opt.Images, n, opt.Seed)
	if err != nil {
		return nil, nil, err
	}
	base, bls, err := expose(bm, bdir, opt.Open)
	if err != nil {
		return nil, nil, fmt.Errorf("baseline: %w", err)
	}
	defer base.r.Close()
	cand, cls, err := expose(cm, cdir, opt.Open)
	if err != nil {
		return nil, nil, fmt.Errorf("candidate: %w", err)
	}
	defer cand.r.Close()
	d := &verify.LayerDiff{Samples: in.N, Inputs: in.Source}
	var matched []graphLayer
	for _, l := range bls {
		if _, ok := cand.layers[l.key]; ok {
			matched = append(matched, l)
		}
	}
	d.Matched, d.Unmatched = len(matched), len(bls)+len(cls)-2*len(matched)
	if len(matched) == 0 {
		d.Error = fmt.Sprintf("no layer of the baseline (%d) matched one of the candidate (%d) by weight name", len(bls), len(cls))
		return nil, d, nil
	}
	acc := make([]diffAcc, len(matched))
	sl := 3 * in.H * in.W
	for s := 0; s < in.N; s++ {
		x := in.X[s*sl : (s+1)*sl]
		bv, err := runExposed(ctx, base.r, x, in.H, in.W)
		if err != nil {
			return nil, nil, fmt.Errorf("baseline: %w", err)
		}
		cv, err := runExposed(ctx, cand.r, x, in.H, in.W)
		if err != nil {
			return nil, nil, fmt.Errorf("candidate: %w", err)
		}
		for i, l := range matched {
			c := cand.layers[l.key]
			ie, ic, err := relErr(bv[l.in.Name], cv[c.in.Name])
			if err != nil {
				return nil, nil, fmt.Errorf("layer %s input: %w", l.key, err)
			}
			oe, oc, err := relErr(bv[l.out.Name], cv[c.out.Name])
			if err != nil {
				return nil, nil, fmt.Errorf("layer %s output: %w", l.key, err)
			}
			acc[i].inErr += ie
			acc[i].outErr += oe
			acc[i].inCos += ic
			acc[i].outCos += oc
		}
	}
	sqnr, werr := weightSQNR(ctx, cdir)
	if werr != nil {
		d.WeightError = werr.Error()
	}
	out := make([]verify.LayerDelta, len(matched))
	k := float64(in.N)
	for i, l := range matched {
		a := acc[i]
		out[i] = verify.LayerDelta{Index: i, Name: l.key, Op: cand.layers[l.key].op,
			InputRelErr: a.inErr / k, OutputRelErr: a.outErr / k, InputCosine: a.inCos / k, OutputCosine: a.outCos / k}
		out[i].Introduced = out[i].OutputRelErr - out[i].InputRelErr
		out[i].CosineDrop = out[i].InputCosine - out[i].OutputCosine
		if v, ok := sqnr[l.key]; ok {
			out[i].WeightSQNRdB = &v
		}
	}
	slices.SortStableFunc(out, func(a, b verify.LayerDelta) int {
		switch {
		case a.Introduced > b.Introduced:
			return -1
		case a.Introduced < b.Introduced:
			return 1
		}
		return 0
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out, d, nil
}

// runExposed runs one sample and returns every float output as float32 by
// name.
func runExposed(ctx context.Context, r verify.Runner, x []float32, h, w int) (map[string][]float32, error) {
	t := verify.Tensor{Name: r.Inputs()[0].Name, DType: verify.Float32, Shape: []int64{1, 3, int64(h), int64(w)}, F32: x}
	outs, err := r.Run(ctx, []verify.Tensor{t})
	if err != nil {
		return nil, err
	}
	vals := map[string][]float32{}
	for _, o := range outs {
		switch o.DType {
		case verify.Float32:
			vals[o.Name] = o.F32
		case verify.Float16:
			v := make([]float32, len(o.U16))
			quant.F16ToF32(v, o.U16)
			vals[o.Name] = v
		}
	}
	vals[t.Name] = x
	return vals, nil
}

// errNoValue is a layer value the runtime did not return.
var errNoValue = errors.New("value missing or of another size")

// relErr is ‖b − a‖ / ‖a‖ and the cosine of a and b, in float64.
func relErr(a, b []float32) (rel, cos float64, err error) {
	if a == nil || b == nil || len(a) != len(b) || len(a) == 0 {
		return 0, 0, errNoValue
	}
	var d2, a2, b2, ab float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		d2 += (y - x) * (y - x)
		a2 += x * x
		b2 += y * y
		ab += x * y
	}
	switch {
	case a2 == 0 && d2 == 0:
		rel = 0
	case a2 == 0:
		rel = math.Inf(1)
	default:
		rel = math.Sqrt(d2 / a2)
	}
	switch {
	case a2 == 0 && b2 == 0:
		cos = 1
	case a2 == 0 || b2 == 0:
		cos = 0
	default:
		cos = ab / math.Sqrt(a2*b2)
	}
	return rel, cos, nil
}

// weightSQNR is each quantized layer's weight SQNR by layer key, from the
// export directory's artifact statistics.
func weightSQNR(ctx context.Context, candidate string) (map[string]float64, error) {
	ls, err := WeightErrors(ctx, candidate)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range ls {
		if i := strings.Index(l.Name, ".weight"); i > 0 {
			out[l.Name[:i]] = l.SQNRdB
		}
	}
	return out, nil
}
