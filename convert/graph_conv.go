package convert

import (
	"fmt"
	"math"

	"github.com/quantpack/quantpack/formats/onnx"
)

// convSpec is a Conv2d's geometry (square kernel, symmetric padding
// (k-1)/2·dilation as MobileViTConvLayer pads).
type convSpec struct {
	Kernel, Stride, Groups int
}

// batchNorm is an eval-mode BatchNorm2d reduced to a per-channel affine map
// y = x·Scale + Shift, computed in float64 from the stored statistics.
type batchNorm struct {
	Scale, Shift []float64
}

// readBatchNorm reads prefix.{weight,bias,running_mean,running_var} (any
// float dtype; num_batches_tracked is ignored) for n channels:
// Scale = γ/√(var+eps), Shift = β − mean·Scale.
func (b *builder) readBatchNorm(prefix string, n int64, eps float64) batchNorm {
	bn := batchNorm{Scale: make([]float64, n), Shift: make([]float64, n)}
	g := b.paramData(prefix+".weight", n)
	be := b.paramData(prefix+".bias", n)
	mu := b.paramData(prefix+".running_mean", n)
	v := b.paramData(prefix+".running_var", n)
	if b.err != nil {
		return bn
	}
	for i := range bn.Scale {
		den := float64(v[i]) + eps
		if !(den > 0) || math.IsInf(den, 0) {
			b.errf(fmt.Errorf("%s: %w: %q[%d] is %v", b.w.path, ErrTensorShape, prefix+".running_var", i, v[i]))
			return bn
		}
		s := float64(g[i]) / math.Sqrt(den)
		bn.Scale[i] = s
		bn.Shift[i] = float64(be[i]) - float64(mu[i])*s
	}
	return bn
}

// conv2d emits Conv2d(weight wname, no bias of its own) followed by the
// eval-mode BatchNorm bn (nil: none), BatchNorm folded into the convolution:
// W'[o] = W[o]·Scale[o], bias' = Shift. The weight's stored scheme decides
// the form:
//
//	float              Conv(x, W', bias'), W' folded in float64 and rounded once
//	int8-per-channel   --int8-mode qdq:     Conv(x, DequantizeLinear(q, absmax/127·Scale, axis 0), bias')
//	                   --int8-mode dynamic: Conv(x, q·absmax/127·Scale as float32, bias')
//	                   depthwise (both):    as dynamic
//	                   (measurement only)   DynamicQuantizeLinear(x) → ConvInteger(x_q, q+128, x_zp, 128)
//	                                        → Cast → ·(x_scale·absmax/127·Scale) + bias'
//
// Why (docs/mobilevit.md, ONNX Runtime 1.30 CPU): ConvInteger plus the
// rescaling ops is slower than float Conv at every MobileViT layer size, and
// ORT keeps a DequantizeLinear in front of a float Conv (it does not fold it
// away) so QDQ pays a dequantization per run; expanding the codes at export
// is the fastest form and computes exactly the values DequantizeLinear
// would. The int8 cost is then file size only, which qdq keeps small.
// Depthwise 3×3 convolutions have 9 weights per channel: int8 saves a few
// kilobytes and measured no faster, so they are always expanded.
//
// Folding into an int8 weight touches only the per-channel scale, so the
// artifact's codes are reused exactly; a channel whose folded scale is
// negative gets its codes negated (symmetric codes lie in [-127, 127]), so
// every scale handed to ONNX Runtime is positive.
func (b *builder) conv2d(x, wname string, cs convSpec, bn *batchNorm) string {
	if b.err != nil {
		return x
	}
	shape, scheme, err := b.w.info(wname)
	if err != nil {
		b.errf(err)
		return x
	}
	if len(shape) != 4 || shape[2] != int64(cs.Kernel) || shape[3] != int64(cs.Kernel) || shape[0]%int64(cs.Groups) != 0 {
		b.errf(fmt.Errorf("%s: %w: %q has shape %v, want [out, in/%d, %d, %d]", b.w.path, ErrTensorShape, wname, shape, cs.Groups, cs.Kernel, cs.Kernel))
		return x
	}
	out := shape[0]
	if bn != nil && int64(len(bn.Scale)) != out {
		b.errf(fmt.Errorf("%s: %w: %q has %d output channels, its BatchNorm %d", b.w.path, ErrTensorShape, wname, out, len(bn.Scale)))
		return x
	}
	pad := int64(cs.Kernel-1) / 2
	attrs := []*onnx.Attribute{
		onnx.AttrInts("kernel_shape", int64(cs.Kernel), int64(cs.Kernel)),
		onnx.AttrInts("strides", int64(cs.Stride), int64(cs.Stride)),
		onnx.AttrInts("pads", pad, pad, pad, pad),
		onnx.AttrInt("group", int64(cs.Groups)),
	}
	var y string
	b.in(prefixOf(wname), func() {
		switch scheme {
		case SchemeFP32, SchemeFP16, SchemeBF16:
			y = b.convFloat(x, wname, shape, bn, attrs)
		case SchemeInt8Ch:
			y = b.convInt8(x, wname, shape, bn, attrs, cs.Groups)
		default:
			b.errf(fmt.Errorf("%s: %w: convolution weight %q stored as %s", b.w.path, ErrUnsupportedLayout, wname, scheme))
			y = x
		}
	})
	return y
}

// convBias returns bn's shift as the Conv bias ("" without BatchNorm).
func (b *builder) convBias(wname string, bn *batchNorm, dt onnx.DataType, dims ...int64) string {
	if bn == nil {
		return ""
	}
	if dims == nil {
		dims = []int64{int64(len(bn.Shift))}
	}
	v := make([]float32, len(bn.Shift))
	for i, s := range bn.Shift {
		v[i] = float32(s)
	}
	return b.addInit(floatTensor(b.unique(prefixOf(wname)+initFoldedBias), dt, dims, v))
}

func (b *builder) convFloat(x, wname string, shape []int64, bn *batchNorm, attrs []*onnx.Attribute) string {
	if bn == nil {
		return b.node("Conv", []string{x, b.param(wname)}, attrs...)
	}
	w := b.paramData(wname, shape...)
	if b.err != nil {
		return x
	}
	per := len(w) / int(shape[0])
	for o := 0; o < int(shape[0]); o++ {
		s := bn.Scale[o]
		for i := o * per; i < (o+1)*per; i++ {
			w[i] = float32(float64(w[i]) * s)
		}
	}
	wf := b.addInit(floatTensor(b.unique(wname+initFolded), b.dt, shape, w))
	return b.node("Conv", []string{x, wf, b.convBias(wname, bn, b.dt)}, attrs...)
}

// int8ConvWeight reads an int8-per-channel conv weight and returns its codes
// and the positive per-channel scale of the folded weight.
func (b *builder) int8ConvWeight(wname string, shape []int64, bn *batchNorm) ([]int8, []float32) {
	l, g := mustLayout(SchemeInt8Ch), geom{Shape: shape}
	e, err := b.storedPart(l, partWeight, wname, g)
	if err != nil {
		b.errf(err)
		return nil, nil
	}
	out := shape[0]
	absmax := b.partFloats(l, partAbsmax, wname, g)
	if absmax == nil {
		return nil, nil
	}
	raw, err := readRaw(e)
	if err != nil {
		b.errf(err)
		return nil, nil
	}
	q := make([]int8, len(raw))
	for i, c := range raw {
		q[i] = int8(c)
	}
	per := len(q) / int(out)
	scale := make([]float32, out)
	for o := range scale {
		s := float64(absmax[o]) / 127
		if bn != nil {
			s *= bn.Scale[o]
		}
		codes := q[o*per : (o+1)*per]
		switch {
		case s == 0 || float32(s) == 0:
			// The channel is zero (absmax 0 or γ 0): any scale will do.
			clear(codes)
			s = 1
		case s < 0:
			for i, c := range codes {
				if c == math.MinInt8 {
					b.errf(fmt.Errorf("%s: %w: %q channel %d holds code -128 (symmetric int8 codes are in [-127, 127])", e.File.Name(), ErrTensorShape, wname, o))
					return nil, nil
				}
				codes[i] = -c
			}
			s = -s
		}
		scale[o] = float32(s)
	}
	return q, scale
}

// int8 convolution forms (see convInt8).
const (
	convFloat   = "float"   // codes expanded to float32 q·scale at export
	convQDQ     = "qdq"     // DequantizeLinear(int8, axis 0) → Conv
	convInteger = "integer" // DynamicQuantizeLinear → ConvInteger → scale
)

// int8ConvForm overrides the form of int8 convolutions; "" chooses by
// --int8-mode. int8Depthwise lets depthwise convolutions take the chosen
// form too instead of convFloat. Both exist for the measurements in
// docs/mobilevit.md (BenchmarkMobileViTSpeed).
var (
	int8ConvForm  = ""
	int8Depthwise = false
)

func (b *builder) convInt8(x, wname string, shape []int64, bn *batchNorm, attrs []*onnx.Attribute, groups int) string {
	if !b.requireFP32(wname) {
		return x
	}
	q, scale := b.int8ConvWeight(wname, shape, bn)
	if b.err != nil {
		return x
	}
	out := shape[0]
	form := int8ConvForm
	if form == "" {
		form = convQDQ
		if b.opt.Int8Mode == Int8Dynamic {
			form = convFloat
		}
	}
	if groups > 1 && groups == int(out) && !int8Depthwise {
		form = convFloat
	}
	if form == convFloat {
		per := len(q) / int(out)
		w := make([]float32, len(q))
		for i, c := range q {
			w[i] = float32(c) * scale[i/per]
		}
		wf := b.addInit(onnx.TensorF32(b.unique(wname+initDequantized), shape, w))
		in := []string{x, wf}
		if bias := b.convBias(wname, bn, onnx.Float); bias != "" {
			in = append(in, bias)
		}
		return b.node("Conv", in, attrs...)
	}
	if form == convQDQ {
		bias := b.convBias(wname, bn, onnx.Float)
		wq := b.addInit(onnx.TensorI8(b.unique(wname+initConvCodes), shape, q))
		sc := b.addInit(onnx.TensorF32(b.unique(wname+initConvScale), []int64{out}, scale))
		zp := b.addInit(onnx.TensorI8(b.unique(wname+initConvZero), []int64{out}, make([]int8, out)))
		wf := b.node("DequantizeLinear", []string{wq, sc, zp}, onnx.AttrInt("axis", 0))
		in := []string{x, wf}
		if bias != "" {
			in = append(in, bias)
		}
		return b.node("Conv", in, attrs...)
	}
	// ONNX Runtime's ConvInteger takes uint8 weights with one zero point for
	// the whole tensor: store q+128 with zero point 128 (exact), and apply
	// the per-channel scales after the integer convolution.
	u := make([]uint8, len(q))
	for i, c := range q {
		u[i] = uint8(int16(c) + 128)
	}
	wq := b.addInit(onnx.TensorU8(b.unique(wname+initConvCodesU8), shape, u))
	wzp := b.addInit(onnx.TensorU8(b.unique(wname+initConvZero), nil, []uint8{128}))
	dq := b.nodeIn("", "DynamicQuantizeLinear", []string{x}, 3)
	acc := b.node("ConvInteger", []string{dq[0], wq, dq[2], wzp}, attrs...)
	sc := b.addInit(onnx.TensorF32(b.unique(wname+initConvScale), []int64{1, out, 1, 1}, scale))
	y := b.mul(b.cast(acc, onnx.Float), b.mul(dq[1], sc))
	if bn != nil {
		y = b.add(y, b.convBias(wname, bn, onnx.Float, 1, out, 1, 1))
	}
	return y
}
