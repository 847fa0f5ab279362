package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// int8 export modes.
const (
	Int8Dynamic = "dynamic" // com.microsoft DynamicQuantizeMatMul: activations quantized per call
	Int8QDQ     = "qdq"     // DequantizeLinear(int8, per-axis) → MatMul: weights only
)

// linear emits y = x·Wᵀ + b for the Linear layer prefix (weight [out, in],
// optional bias [out]) in the form its stored scheme calls for:
//
//	float (fp32/fp16/bf16)  MatMul(x, Wᵀ) + b, Wᵀ in the compute dtype
//	int8-rowwise, dynamic   com.microsoft DynamicQuantizeMatMul(x, Wq ᵀ int8 [K,N], SCB/127, -, b)
//	int8-rowwise, qdq       MatMul(x, DequantizeLinear(Wq ᵀ, SCB/127, axis 1)) + b
//	int4-block              com.microsoft MatMulNBits(x, codes, scales, [zero points], -, b)
//	nf4-block               com.microsoft MatMulBnb4(x, codes, absmax) + b
//
// The codes and scales are the artifact's bytes; only the int8 transpose and
// the nf4 absmax (restored from double quant) are computed here.
func (b *builder) linear(x, prefix string) string {
	if b.err != nil {
		return x
	}
	wname := prefix + ".weight"
	shape, scheme, err := b.w.info(wname)
	if err != nil {
		b.errf(err)
		return x
	}
	if len(shape) != 2 {
		b.errf(tensorErr(b.w.path, wname, ErrTensorShape, "has shape %v, want [out, in]", shape))
		return x
	}
	n, k := shape[0], shape[1]
	bias := ""
	if b.w.has(prefix + ".bias") {
		bias = b.paramAs(prefix+".bias", nil, false)
		if bs, _, _ := b.w.info(prefix + ".bias"); !slices.Equal(bs, []int64{n}) {
			b.errf(tensorErr(b.w.path, prefix+".bias", ErrTensorShape, "has shape %v, want [%d]", bs, n))
			return x
		}
	}
	var y string
	b.in(prefix, func() {
		x = b.awqInput(x, prefix)
		switch scheme {
		case SchemeFP32, SchemeFP16, SchemeBF16:
			y = b.matmul(x, b.paramT(wname))
			if bias != "" {
				y = b.add(y, bias)
			}
		case SchemeInt8:
			y = b.linearInt8(x, wname, n, k, bias)
		case SchemeInt4:
			y = b.linearInt4(x, wname, n, k, bias)
		case SchemeNF4:
			y = b.linearNF4(x, wname, n, k, bias)
		default:
			b.errf(fmt.Errorf("%s: %w: Linear weight %q stored as %s", b.w.path, ErrUnsupportedLayout, wname, scheme))
			y = x
		}
	})
	return y
}

func (b *builder) requireFP32(wname string) bool {
	if b.dt != onnx.Float {
		b.errf(fmt.Errorf("%w: quantized Linear %q in a %s graph", ErrUnsupportedLayout, wname, b.dt))
		return false
	}
	return true
}

func (b *builder) linearInt8(x, wname string, n, k int64, bias string) string {
	if !b.requireFP32(wname) {
		return x
	}
	l, g := mustLayout(SchemeInt8), geom{Shape: []int64{n, k}}
	wq, err := b.storedPart(l, partWeight, wname, g)
	if err != nil {
		b.errf(err)
		return x
	}
	scb := b.partFloats(l, partAbsmax, wname, g)
	if scb == nil {
		return x
	}
	// bitsandbytes dequantizes w = q·SCB/127; the per-column scale of the
	// transposed [K, N] weight is SCB/127.
	scale := make([]float32, n)
	for i, s := range scb {
		scale[i] = s / 127
	}
	bq := b.addInit(transposeI8Source(b.unique(wname+initTransposed), wq))
	sc := b.addInit(onnx.TensorF32(b.unique(wname+initRowScale), []int64{n}, scale))
	if b.opt.Int8Mode == Int8QDQ {
		zp := b.addInit(onnx.TensorI8(b.unique(wname+initRowZero), []int64{n}, make([]int8, n)))
		wf := b.node("DequantizeLinear", []string{bq, sc, zp}, onnx.AttrInt("axis", 1))
		y := b.matmul(x, wf)
		if bias != "" {
			y = b.add(y, bias)
		}
		return y
	}
	in := []string{x, bq, sc}
	if bias != "" {
		in = append(in, "", bias)
	}
	return b.msNode("DynamicQuantizeMatMul", in)
}

// storedPart returns part p of weight w as layout l stores it for geometry
// g, checking its dtype against what readers of the part accept and its
// shape against the layout's.
func (b *builder) storedPart(l *layout, p part, w string, g geom) (safetensors.Entry, error) {
	t := l.part(p)
	return b.w.stored(t.name(w), l.accepts(p), t.Shape(g))
}

// partFloats reads part p of weight w (a float vector: scales, absmax,
// codebooks) as float32, refusing NaN and ±Inf; nil after an error.
func (b *builder) partFloats(l *layout, p part, w string, g geom) []float32 {
	e, err := b.storedPart(l, p, w, g)
	if err != nil {
		b.errf(err)
		return nil
	}
	v, err := readFloat32(e)
	if err != nil {
		b.errf(err)
		return nil
	}
	for i, s := range v {
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			b.errf(tensorErr(e.File.Name(), e.Name, ErrTensorShape, "[%d] is %v", i, s))
			return nil
		}
	}
	return v
}

func (b *builder) linearInt4(x, wname string, n, k int64, bias string) string {
	if !b.requireFP32(wname) {
		return x
	}
	l := mustLayout(SchemeInt4)
	codes, err := b.w.stored(wname, l.accepts(partWeight), nil)
	if err != nil {
		b.errf(err)
		return x
	}
	// [N, k_blocks, block/2]: the block size is in the layout itself.
	if len(codes.Shape) != 3 || codes.Shape[0] != n || codes.Shape[2] < 8 {
		b.errf(tensorErr(codes.File.Name(), wname, ErrTensorShape, "has shape %v, want [%d, k_blocks, block/2]", codes.Shape, n))
		return x
	}
	bs := 2 * codes.Shape[2]
	kb := codes.Shape[1]
	if bs&(bs-1) != 0 || kb != (k+bs-1)/bs {
		b.errf(tensorErr(codes.File.Name(), wname, ErrTensorShape, "has shape %v: %d blocks of %d do not cover K=%d", codes.Shape, kb, bs, k))
		return x
	}
	g := geom{Shape: []int64{n, k}, Block: bs}
	scales, err := b.storedPart(l, partScale, wname, g)
	if err != nil {
		b.errf(err)
		return x
	}
	in := []string{x, b.addInit(rawSource(b.unique(wname), codes, onnx.Uint8, codes.Shape))}
	if scales.DType == safetensors.F32 {
		in = append(in, b.addInit(rawSource(b.unique(scales.Name), scales, onnx.Float, scales.Shape)))
	} else {
		in = append(in, b.addInit(floatSource(b.unique(scales.Name), scales, scales.Shape, false, onnx.Float)))
	}
	if _, ok := b.w.lookup(l.name(wname, partZeroPoint)); ok {
		zp, err := b.storedPart(l, partZeroPoint, wname, g)
		if err != nil {
			b.errf(err)
			return x
		}
		in = append(in, b.addInit(rawSource(b.unique(zp.Name), zp, onnx.Uint8, zp.Shape)))
	} else {
		in = append(in, "")
	}
	if bias != "" {
		in = append(in, "", bias) // g_idx (deprecated), bias
	}
	for len(in) > 3 && in[len(in)-1] == "" {
		in = in[:len(in)-1]
	}
	return b.msNode("MatMulNBits", in,
		onnx.AttrInt("K", k), onnx.AttrInt("N", n), onnx.AttrInt("bits", 4),
		onnx.AttrInt("block_size", bs), onnx.AttrInt("accuracy_level", int64(b.opt.Int4Accuracy)))
}

// maxQuantStateBytes caps the nf4 quant_state JSON (about 200 bytes).
const maxQuantStateBytes = 1 << 16

func (b *builder) linearNF4(x, wname string, n, k int64, bias string) string {
	if !b.requireFP32(wname) {
		return x
	}
	numel := n * k
	codes, err := b.storedPart(mustLayout(SchemeNF4), partWeight, wname, geom{Shape: []int64{n, k}})
	if err != nil {
		b.errf(err)
		return x
	}
	st, err := b.nf4State(wname, n, k)
	if err != nil {
		b.errf(err)
		return x
	}
	absmax, err := b.nf4Absmax(wname, st, numel)
	if err != nil {
		b.errf(err)
		return x
	}
	bs := int64(st.BlockSize)
	in := []string{x,
		b.addInit(rawSource(b.unique(wname), codes, onnx.Uint8, []int64{(numel + 1) / 2})),
		b.addInit(onnx.TensorF32(b.unique(mustLayout(SchemeNF4).name(wname, partAbsmax)), []int64{int64(len(absmax))}, absmax)),
	}
	y := b.msNode("MatMulBnb4", in, onnx.AttrInt("K", k), onnx.AttrInt("N", n),
		onnx.AttrInt("block_size", bs), onnx.AttrInt("quant_type", 1))
	if bias != "" {
		y = b.add(y, bias)
	}
	return y
}

// nf4State reads and checks an nf4 weight's quant_state and its stored
// quant_map.
func (b *builder) nf4State(wname string, n, k int64) (nf4State, error) {
	var st nf4State
	l := mustLayout(SchemeNF4)
	name := l.name(wname, partQuantState)
	e, err := b.w.stored(name, l.accepts(partQuantState), nil)
	if err != nil {
		return st, err
	}
	if e.Size > maxQuantStateBytes {
		return st, tensorErr(e.File.Name(), name, ErrTensorShape, "is %d bytes (limit %d)", e.Size, maxQuantStateBytes)
	}
	raw, err := readRaw(e)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, tensorErr(e.File.Name(), name, ErrConfig, "%v", err)
	}
	bs := int64(st.BlockSize)
	switch {
	case st.QuantType != "nf4":
		return st, tensorErr(e.File.Name(), name, ErrUnsupportedLayout, "quant_type %q (export supports nf4)", st.QuantType)
	case !validNF4Block(bs):
		return st, tensorErr(e.File.Name(), name, ErrTensorShape, "blocksize %d", bs)
	case !slices.Equal(st.Shape, []int64{n, k}):
		return st, tensorErr(e.File.Name(), name, ErrTensorShape, "shape %v, want [%d %d]", st.Shape, n, k)
	}
	qm := b.partFloats(l, partQuantMap, wname, geom{})
	if qm == nil {
		return st, b.err
	}
	if !slices.Equal(qm, quant.NF4Codebook[:]) {
		return st, tensorErr(e.File.Name(), l.name(wname, partQuantMap), ErrUnsupportedLayout, "is not the NF4 codebook")
	}
	return st, nil
}

// nf4Absmax returns the float32 absmax per block: stored as is, or restored
// from double quant with the dequantization a bitsandbytes loader applies.
func (b *builder) nf4Absmax(wname string, st nf4State, numel int64) ([]float32, error) {
	l := mustLayout(SchemeNF4)
	g := geom{Shape: []int64{numel}, Block: int64(st.BlockSize)}
	blocks := g.blocks()
	name := l.name(wname, partAbsmax)
	e, err := b.storedPart(l, partAbsmax, wname, g)
	if err != nil {
		return nil, err
	}
	if e.DType == safetensors.F32 {
		if st.NestedOffset != nil {
			return nil, tensorErr(e.File.Name(), name, ErrTensorShape, "is float32 but quant_state has a nested offset")
		}
		v, err := readFloat32(e)
		return v, err
	}
	if st.NestedOffset == nil || st.NestedBlockSize != nestedBlock {
		return nil, tensorErr(e.File.Name(), name, ErrUnsupportedLayout, "is double-quantized but quant_state has no nested_offset or a nested_blocksize other than %d", nestedBlock)
	}
	nested := b.partFloats(l, partNestedAbsmax, wname, g)
	qmap := b.partFloats(l, partNestedQuantMap, wname, g)
	if nested == nil || qmap == nil {
		return nil, b.err
	}
	dm := quant.DynamicMap(true)
	if !slices.Equal(qmap, dm[:]) {
		return nil, tensorErr(e.File.Name(), l.name(wname, partNestedQuantMap), ErrUnsupportedLayout, "is not bitsandbytes' signed dynamic map")
	}
	codes, err := readRaw(e)
	if err != nil {
		return nil, err
	}
	out := make([]float32, blocks)
	if err := quant.UndoDoubleQuant(out, codes, nested, float32(*st.NestedOffset), nestedBlock); err != nil {
		return nil, fmt.Errorf("%s: %q: %w", e.File.Name(), name, err)
	}
	return out, nil
}
