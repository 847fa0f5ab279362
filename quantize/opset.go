package quantize

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/onnx"
)

// perChannelOpset is the first default-domain opset whose
// DequantizeLinear takes an axis: per-output-channel weight scales.
const perChannelOpset = 13

// sameTo13 are the default-domain op types whose definition does not
// change meaning between opset 11 and opset 13: their versions 12 and 13
// only add element types (bfloat16, int8) or an attribute whose default is
// the old behaviour (ArgMax select_last_index, GatherND batch_dims), or
// give a per-tensor QuantizeLinear/DequantizeLinear an axis it ignores.
// Ops that do change are absent: Softmax, LogSoftmax and Hardmax (13: one
// axis instead of a 2-D coercion), Split, Squeeze, Unsqueeze and ReduceSum
// (13: attributes become inputs), Dropout (12: ratio becomes an input),
// If, Loop and Scan (subgraphs are not checked). Resize is checked apart.
var sameTo13 = map[string]bool{}

func init() {
	for _, op := range []string{
		"Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
		"AveragePool", "BatchNormalization", "BitShift", "Cast", "Ceil", "Clip", "Concat", "Constant",
		"ConstantOfShape", "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace",
		"DequantizeLinear", "Div", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor",
		"Gather", "GatherElements", "GatherND", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool",
		"Greater", "HardSigmoid", "Identity", "InstanceNormalization", "IsInf", "IsNaN", "LRN",
		"LeakyRelu", "Less", "Log", "LpNormalization", "LpPool", "MatMul", "MatMulInteger", "Max",
		"MaxPool", "MaxUnpool", "Mean", "Min", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not",
		"OneHot", "Or", "PRelu", "Pad", "Pow", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "Range",
		"Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
		"ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape", "Round", "ScatterElements",
		"ScatterND", "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softplus",
		"Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK",
		"Transpose", "Where", "Xor",
	} {
		sameTo13[op] = true
	}
}

// UpgradeOpset raises the default-domain opset of m from 11 or 12 to 13,
// in place, when every default-domain node means the same at opset 13, so
// that weights can be quantized per output channel (DequantizeLinear's
// axis is new in 13; per-tensor weight scales lose the small channels of
// a BatchNorm-folded convolution). It returns the opset it upgraded from
// (0 when it did not) and, when it did not, why.
func UpgradeOpset(m *onnx.Model) (from int64, reason string) {
	v := defaultOpset(m)
	if v >= perChannelOpset || v < 11 {
		return 0, ""
	}
	for i, n := range m.Graph.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		if n.OpType == "Resize" {
			if a := n.Attr("coordinate_transformation_mode"); a != nil && string(a.S) == "tf_half_pixel_for_nn" {
				return 0, fmt.Sprintf("node %s: Resize's tf_half_pixel_for_nn mode is gone at opset 13", NodeID(n, i))
			}
			continue
		}
		if !sameTo13[n.OpType] {
			return 0, fmt.Sprintf("node %s: %s may change meaning between opset %d and 13", NodeID(n, i), n.OpType, v)
		}
	}
	for _, o := range m.Opsets {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			o.Version = perChannelOpset
		}
	}
	// Opset 13 is IR version 7.
	m.IRVersion = max(m.IRVersion, 7)
	return v, ""
}
