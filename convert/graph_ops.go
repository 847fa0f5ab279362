package convert

import (
	"fmt"
	"math"

	"github.com/quantpack/quantpack/formats/onnx"
)

// Thin wrappers over ONNX operators (opset 17 semantics unless noted). Each
// returns the output value's name.

func (b *builder) add(x, y string) string    { return b.node("Add", []string{x, y}) }
func (b *builder) mul(x, y string) string    { return b.node("Mul", []string{x, y}) }
func (b *builder) div(x, y string) string    { return b.node("Div", []string{x, y}) }
func (b *builder) matmul(x, y string) string { return b.node("MatMul", []string{x, y}) }
func (b *builder) tanh(x string) string      { return b.node("Tanh", []string{x}) }
func (b *builder) sigmoid(x string) string   { return b.node("Sigmoid", []string{x}) }

// mulScalar multiplies by a constant of the compute dtype.
func (b *builder) mulScalar(x string, v float32) string { return b.mul(x, b.scalarF(v)) }

// reshape to a static shape; 0 copies the input's dimension (the dynamic
// batch), -1 infers one dimension.
func (b *builder) reshape(x string, shape ...int64) string {
	return b.node("Reshape", []string{x, b.constI64(shape...)})
}

func (b *builder) transpose(x string, perm ...int64) string {
	return b.node("Transpose", []string{x}, onnx.AttrInts("perm", perm...))
}

func (b *builder) softmax(x string, axis int64) string {
	return b.node("Softmax", []string{x}, onnx.AttrInt("axis", axis))
}

func (b *builder) concat(axis int64, xs ...string) string {
	return b.node("Concat", xs, onnx.AttrInt("axis", axis))
}

func (b *builder) cast(x string, to onnx.DataType) string {
	return b.node("Cast", []string{x}, onnx.AttrInt("to", int64(to)))
}

// gather takes index i along axis (the axis disappears).
func (b *builder) gather(x string, axis, i int64) string {
	return b.node("Gather", []string{x, b.scalarI64(i)}, onnx.AttrInt("axis", axis))
}

// slice keeps [start, end) along axis.
func (b *builder) slice(x string, axis, start, end int64) string {
	return b.node("Slice", []string{x, b.constI64(start), b.constI64(end), b.constI64(axis)})
}

// reduceMean averages over axes; from opset 18 the axes are an input.
func (b *builder) reduceMean(x string, keepdims bool, axes ...int64) string {
	kd := int64(0)
	if keepdims {
		kd = 1
	}
	if b.opt.Opset >= 18 {
		return b.node("ReduceMean", []string{x, b.constI64(axes...)}, onnx.AttrInt("keepdims", kd))
	}
	return b.node("ReduceMean", []string{x}, onnx.AttrInts("axes", axes...), onnx.AttrInt("keepdims", kd))
}

// expandBatch broadcasts a [1, ...rest] constant to [batch, ...rest], taking
// the batch size from like's first dimension.
func (b *builder) expandBatch(x, like string, rest ...int64) string {
	shp := b.node("Shape", []string{like}, onnx.AttrInt("start", 0), onnx.AttrInt("end", 1))
	full := b.concat(0, shp, b.constI64(rest...))
	return b.node("Expand", []string{x, full})
}

// layerNorm applies LayerNormalization over the last axis with weight and
// bias read from prefix.weight and prefix.bias.
func (b *builder) layerNorm(x, prefix string, eps float64) string {
	g := b.param(prefix + ".weight")
	bb := b.param(prefix + ".bias")
	return b.node("LayerNormalization", []string{x, g, bb},
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", float32(eps)))
}

// activation applies transformers' ACT2FN[name] exactly as the modeling code
// computes it (the plain-op patterns are what ORT's optimizer fuses).
func (b *builder) activation(x, name string) string {
	switch name {
	case "gelu":
		// GELUActivation: 0.5·x·(1 + erf(x/√2)).
		e := b.node("Erf", []string{b.div(x, b.scalarF(float32(math.Sqrt2)))})
		return b.mul(b.mul(x, b.add(e, b.scalarF(1))), b.scalarF(0.5))
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		// NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
		x3 := b.node("Pow", []string{x, b.scalarF(3)})
		inner := b.mulScalar(b.add(x, b.mulScalar(x3, 0.044715)), float32(math.Sqrt(2/math.Pi)))
		return b.mul(b.mul(x, b.add(b.tanh(inner), b.scalarF(1))), b.scalarF(0.5))
	case "quick_gelu":
		return b.mul(x, b.sigmoid(b.mulScalar(x, 1.702)))
	case "relu":
		return b.node("Relu", []string{x})
	case "silu", "swish":
		return b.mul(x, b.sigmoid(x))
	}
	b.errf(fmt.Errorf("%w: hidden_act %q", ErrUnsupportedSetting, name))
	return x
}

// attention is multi-head scaled dot-product self-attention over q, k, v of
// shape [batch, seq, heads·d]; bias, when not "", is added to the scores
// ([1 or batch, heads, seq, seq]). It returns [batch, seq, heads·d].
//
// The plain form is the eager attention of transformers: softmax(q·kᵀ·scale
// + bias)·v per head. The fused form is com.microsoft MultiHeadAttention,
// which computes the same expression in one kernel.
func (b *builder) attention(q, k, v, bias string, seq, heads, hidden int) string {
	d := hidden / heads
	scale := float32(1 / math.Sqrt(float64(d)))
	if !b.opt.Plain {
		in := []string{q, k, v}
		if bias != "" {
			// inputs: query, key, value, bias, key_padding_mask, attention_bias
			in = append(in, "", "", bias)
		}
		return b.msNode("MultiHeadAttention", in,
			onnx.AttrInt("num_heads", int64(heads)), onnx.AttrFloat("scale", scale))
	}
	S, H, D := int64(seq), int64(heads), int64(d)
	qh := b.transpose(b.reshape(q, 0, S, H, D), 0, 2, 1, 3) // [B, h, S, d]
	kh := b.transpose(b.reshape(k, 0, S, H, D), 0, 2, 3, 1) // [B, h, d, S]
	vh := b.transpose(b.reshape(v, 0, S, H, D), 0, 2, 1, 3) // [B, h, S, d]
	scores := b.mulScalar(b.matmul(qh, kh), scale)
	if bias != "" {
		scores = b.add(scores, bias)
	}
	ctx := b.matmul(b.softmax(scores, -1), vh)
	return b.reshape(b.transpose(ctx, 0, 2, 1, 3), 0, S, int64(hidden))
}
