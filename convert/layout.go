package convert

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// Artifact layouts as data (docs/design.md, "Artifact layouts as data").
//
// A layout is how one scheme stores a weight W in an artifact: the list of
// tensors written for it, each with its name (W plus a suffix, or W's layer
// prefix plus a suffix), its dtype and its shape as a function of the
// weight's geometry and the options. This file is the only place those
// facts are written down: planItem sizes the output from the table,
// processItem fills its parts, export and dequantize read the parts by it,
// and inspect recognises artifacts by it. A new scheme or layout is a new
// entry in layouts, plus the numbers that fill it in processItem.

// part says what one tensor of a layout holds, independently of how a
// scheme names it (int8's absmax is P.SCB, nf4's is W.absmax).
type part string

// Parts of the layouts.
const (
	partWeight         part = "weight"           // W itself: float values or quantized codes
	partAbsmax         part = "absmax"           // per row (int8) or per block (nf4)
	partFormat         part = "weight_format"    // bitsandbytes int8 weight format (0 = row)
	partScale          part = "scale"            // int4 per-block scales
	partZeroPoint      part = "zero_point"       // int4 per-block zero points, two per byte
	partQuantMap       part = "quant_map"        // nf4 codebook
	partNestedAbsmax   part = "nested_absmax"    // nf4 double quant: absmax of the absmax
	partNestedQuantMap part = "nested_quant_map" // nf4 double quant: the absmax codebook
	partQuantState     part = "quant_state"      // nf4 bitsandbytes QuantState JSON
)

// geom is what a layout's shapes depend on: the weight's logical shape and
// dtype, and the options that change the stored form.
type geom struct {
	Shape       []int64
	DType       safetensors.DType // the source's (SchemeCopy keeps it)
	Block       int64             // int4 and nf4 block size
	Asym        bool              // int4: zero points stored
	DoubleQuant bool              // nf4: absmax quantized again
	TorchDType  string            // nf4 quant_state "dtype" (the rest dtype)
}

func (g geom) rows() int64 { return g.Shape[0] }

func (g geom) numel() int64 {
	n := int64(1)
	for _, d := range g.Shape {
		n *= d
	}
	return n
}

// kBlocks is int4's blocks per row of a [N, K] weight.
func (g geom) kBlocks() int64 { return (g.Shape[1] + g.Block - 1) / g.Block }

// blocks is nf4's blocks over the flattened weight.
func (g geom) blocks() int64 { return (g.numel() + g.Block - 1) / g.Block }

// tensorPart is one tensor a layout stores for W.
type tensorPart struct {
	Part part
	// Suffix follows W, or with OfLayer W's layer prefix (W without
	// ".weight"), as bitsandbytes' int8 keys do.
	Suffix  string
	OfLayer bool
	DType   safetensors.DType   // as written; "" keeps the source's
	Read    []safetensors.DType // what readers accept; nil: DType only
	Shape   func(geom) []int64  // nil result: cannot be sized (internal error)
	If      func(geom) bool     // nil: always written
	Fixed   func() []byte       // the content every artifact holds here; nil: computed
}

// name is the tensor's name for weight w.
func (p tensorPart) name(w string) string {
	if p.OfLayer {
		return prefixOf(w) + p.Suffix
	}
	return w + p.Suffix
}

// owner is the inverse of name: the weight a tensor called n belongs to,
// if n has this part's suffix.
func (p tensorPart) owner(n string) (string, bool) {
	w, ok := strings.CutSuffix(n, p.Suffix)
	if !ok || w == "" || p.Suffix == "" {
		return "", false
	}
	if p.OfLayer {
		w += ".weight"
	}
	return w, true
}

// layout is one scheme's stored form.
type layout struct {
	Scheme string
	// Found and Writer are what inspect reports for an artifact holding
	// this layout ("" for the float layouts, which are not recognised).
	Found, Writer string
	// Marker is the part whose presence identifies the layout in a
	// checkpoint.
	Marker part
	Parts  []tensorPart
}

// Shapes shared by several layouts.
var (
	sameShape = func(g geom) []int64 { return g.Shape }
	perRow    = func(g geom) []int64 { return []int64{g.rows()} }
	nf4Blocks = func(g geom) []int64 { return []int64{g.blocks()} }
	withDQ    = func(g geom) bool { return g.DoubleQuant }
)

// layouts is every scheme's layout, in the order inspect looks for them.
var layouts = []*layout{
	{Scheme: SchemeCopy, Parts: []tensorPart{{Part: partWeight, Shape: sameShape}}},
	{Scheme: SchemeFP32, Parts: []tensorPart{{Part: partWeight, DType: safetensors.F32, Shape: sameShape}}},
	{Scheme: SchemeFP16, Parts: []tensorPart{{Part: partWeight, DType: safetensors.F16, Shape: sameShape}}},
	{Scheme: SchemeBF16, Parts: []tensorPart{{Part: partWeight, DType: safetensors.BF16, Shape: sameShape}}},

	// bitsandbytes LLM.int8 (Int8Params): w = q·SCB/127 per row.
	{Scheme: SchemeInt8, Found: "bnb-int8", Writer: "bitsandbytes LLM.int8 (transformers load_in_8bit)", Marker: partAbsmax,
		Parts: []tensorPart{
			{Part: partWeight, DType: safetensors.I8, Shape: sameShape},
			{Part: partAbsmax, Suffix: ".SCB", OfLayer: true, DType: safetensors.F32, Read: floatDTypes, Shape: perRow},
			// 0 = "row" in bitsandbytes' LINEAR_8BIT_WEIGHTS_FORMAT_MAPPING.
			{Part: partFormat, Suffix: ".weight_format", OfLayer: true, DType: safetensors.U8,
				Shape: func(geom) []int64 { return []int64{} }, Fixed: func() []byte { return []byte{0} }},
		}},

	// quantpack's per-output-channel int8 for convolutions: w = q·absmax/127.
	{Scheme: SchemeInt8Ch, Found: "int8-per-channel", Writer: "quantpack (convolutions)", Marker: partAbsmax,
		Parts: []tensorPart{
			{Part: partWeight, DType: safetensors.I8, Shape: sameShape},
			{Part: partAbsmax, Suffix: "_absmax", DType: safetensors.F32, Read: floatDTypes, Shape: perRow},
		}},

	// com.microsoft MatMulNBits' B, scales and zero_points for a [N, K]
	// weight: codes [N, k_blocks, block/2] low nibble first, zero points
	// two per byte.
	{Scheme: SchemeInt4, Found: "quantpack-int4", Writer: "quantpack (MatMulNBits layout)", Marker: partScale,
		Parts: []tensorPart{
			{Part: partWeight, DType: safetensors.U8,
				Shape: func(g geom) []int64 { return []int64{g.rows(), g.kBlocks(), g.Block / 2} }},
			{Part: partScale, Suffix: "_scale", DType: safetensors.F32, Read: []safetensors.DType{safetensors.F32, safetensors.F16},
				Shape: func(g geom) []int64 { return []int64{g.rows(), g.kBlocks()} }},
			{Part: partZeroPoint, Suffix: "_zero_point", DType: safetensors.U8,
				Shape: func(g geom) []int64 { return []int64{g.rows(), (g.kBlocks() + 1) / 2} },
				If:    func(g geom) bool { return g.Asym }},
		}},

	// bitsandbytes Params4bit (QuantState.as_dict(packed=True)): codes of
	// the flattened weight two per byte, per-block absmax stored as float32
	// or, with double quant, as 8-bit codes of nestedBlock-sized blocks.
	{Scheme: SchemeNF4, Found: "bnb-nf4", Writer: bnb4Writer, Marker: partQuantState,
		Parts: []tensorPart{
			{Part: partWeight, DType: safetensors.U8, Shape: func(g geom) []int64 { return []int64{(g.numel() + 1) / 2, 1} }},
			{Part: partQuantMap, Suffix: ".quant_map", DType: safetensors.F32, Read: floatDTypes,
				Shape: func(geom) []int64 { return []int64{16} },
				Fixed: func() []byte { cb := quant.NF4Codebook; return bytesOfF32(cb[:]) }},
			{Part: partAbsmax, Suffix: ".absmax", DType: safetensors.F32,
				Shape: nf4Blocks, If: func(g geom) bool { return !g.DoubleQuant }},
			{Part: partAbsmax, Suffix: ".absmax", DType: safetensors.U8, Shape: nf4Blocks, If: withDQ},
			{Part: partNestedAbsmax, Suffix: ".nested_absmax", DType: safetensors.F32, Read: floatDTypes, If: withDQ,
				Shape: func(g geom) []int64 { return []int64{(g.blocks() + nestedBlock - 1) / nestedBlock} }},
			{Part: partNestedQuantMap, Suffix: ".nested_quant_map", DType: safetensors.F32, Read: floatDTypes, If: withDQ,
				Shape: func(geom) []int64 { return []int64{256} },
				Fixed: func() []byte { dm := quant.DynamicMap(true); return bytesOfF32(dm[:]) }},
			// The JSON's length is fixed before the offset is known (see
			// nf4StateJSON), so the plan can size it.
			{Part: partQuantState, Suffix: bnb4StatePrefix + "nf4", DType: safetensors.U8, Shape: func(g geom) []int64 {
				js, err := nf4StateJSON(g.nf4State(new(float64)), true)
				if err != nil {
					return nil
				}
				return []int64{int64(len(js))}
			}},
		}},
}

// bnb4StatePrefix begins the quant_state key of every bitsandbytes 4-bit
// layout (nf4, which quantpack writes, and fp4, which inspect recognises);
// the quant type follows it.
const bnb4StatePrefix = ".quant_state.bitsandbytes__"

// bnb4Writer is inspect's Writer of the bitsandbytes 4-bit layouts.
const bnb4Writer = "bitsandbytes Params4bit (transformers load_in_4bit)"

// layoutOf returns a scheme's layout, or nil for an unknown scheme.
func layoutOf(scheme string) *layout {
	for _, l := range layouts {
		if l.Scheme == scheme {
			return l
		}
	}
	return nil
}

// mustLayout is layoutOf for the schemes named in code: a missing one is a
// programming error that every test reaching the call finds.
func mustLayout(scheme string) *layout {
	l := layoutOf(scheme)
	if l == nil {
		panic("convert: internal: no layout for scheme " + scheme)
	}
	return l
}

// part returns the first row of part p (its name and shape are the same in
// every row; only nf4's absmax has two, by double quant). A missing part is
// a programming error, as for mustLayout.
func (l *layout) part(p part) tensorPart {
	for _, t := range l.Parts {
		if t.Part == p {
			return t
		}
	}
	panic(fmt.Sprintf("convert: internal: layout %s has no %s", l.Scheme, p))
}

// name is the name of part p of weight w.
func (l *layout) name(w string, p part) string { return l.part(p).name(w) }

// accepts is every dtype a reader takes for part p.
func (l *layout) accepts(p part) []safetensors.DType {
	var out []safetensors.DType
	for _, t := range l.Parts {
		if t.Part != p {
			continue
		}
		dts := t.Read
		if dts == nil {
			dts = []safetensors.DType{t.DType}
		}
		for _, d := range dts {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}

// holds reports whether dt is a dtype l stores a weight's values or codes in.
func (l *layout) holds(dt safetensors.DType) bool { return slices.Contains(l.accepts(partWeight), dt) }

// companions are the names of every tensor the layout may store for w
// besides w itself (what dequantizing w consumes).
func (l *layout) companions(w string) []string {
	var out []string
	for _, t := range l.Parts {
		if t.Part != partWeight && !slices.Contains(out, t.name(w)) {
			out = append(out, t.name(w))
		}
	}
	return out
}

// specs plans the tensors the layout writes for weight w of geometry g, in
// the table's order, and the rows they come from.
func (l *layout) specs(w string, g geom) ([]safetensors.TensorSpec, []tensorPart, error) {
	var specs []safetensors.TensorSpec
	var rows []tensorPart
	for _, t := range l.Parts {
		if t.If != nil && !t.If(g) {
			continue
		}
		shape := t.Shape(g)
		if shape == nil {
			return nil, nil, fmt.Errorf("convert: internal: cannot size %s of %q", t.Part, w)
		}
		dt := t.DType
		if dt == "" {
			dt = g.DType
		}
		specs = append(specs, safetensors.TensorSpec{Name: t.name(w), DType: dt, Shape: shape})
		rows = append(rows, t)
	}
	return specs, rows, nil
}

// Suffixes of the ONNX initializers export derives from an artifact's
// tensors (their names are part of the golden bytes). Codes and scales that
// enter the graph as stored keep the artifact's names.
const (
	initTransposed  = ".T"           // a weight transposed for MatMul (float or int8)
	initRowScale    = "_scale"       // int8-rowwise Linear: SCB/127 per output column
	initRowZero     = "_zero_point"  // int8-rowwise Linear, qdq: zero points (all 0)
	initFolded      = ".folded"      // conv weight with its BatchNorm folded in
	initFoldedBias  = ".folded_bias" // on the layer prefix: the BatchNorm shift as Conv bias
	initDequantized = ".dequantized" // int8 conv codes expanded to float32
	initConvCodes   = ".q"           // int8 conv codes, BatchNorm sign applied
	initConvCodesU8 = ".q_u8"        // ConvInteger's codes + 128
	initConvScale   = ".scale"       // int8 conv: per-channel scale of the folded weight
	initConvZero    = ".zero_point"  // int8 conv: zero point(s)
)

// prefixOf strips ".weight" from a Linear weight's name.
func prefixOf(name string) string {
	const w = ".weight"
	if len(name) > len(w) && name[len(name)-len(w):] == w {
		return name[:len(name)-len(w)]
	}
	return name
}

// nf4State is bitsandbytes' packed QuantState for nf4, the JSON stored in
// W.quant_state.bitsandbytes__nf4 (QuantState.as_dict(packed=True)).
type nf4State struct {
	QuantType       string   `json:"quant_type"`
	BlockSize       int      `json:"blocksize"`
	DType           string   `json:"dtype"`
	Shape           []int64  `json:"shape"`
	NestedBlockSize int      `json:"nested_blocksize,omitempty"`
	NestedDType     string   `json:"nested_dtype,omitempty"`
	NestedOffset    *float64 `json:"nested_offset,omitempty"`
}

// nf4State is the quant_state of an nf4 weight of geometry g; offset is the
// double quant offset (ignored without double quant).
func (g geom) nf4State(offset *float64) nf4State {
	s := nf4State{QuantType: "nf4", BlockSize: int(g.Block), DType: g.TorchDType, Shape: g.Shape}
	if g.DoubleQuant {
		s.NestedBlockSize, s.NestedDType, s.NestedOffset = nestedBlock, "float32", offset
	}
	return s
}

// nf4OffsetWidth is the fixed width of the nested_offset number in the
// quant_state JSON: float32 values print in at most 15 characters with
// strconv's shortest form ("-1.1754944e-38"), so 24 leaves room, and a fixed
// width lets the tensor's size be planned before the offset is known.
const nf4OffsetWidth = 24

// nf4StateJSON encodes the state. With placeholder, nested_offset is written
// as a run of spaces-padded zero of the fixed width; otherwise the real value
// is padded with trailing spaces inside the JSON (allowed whitespace) to the
// same width, so the bytes length never changes.
func nf4StateJSON(s nf4State, placeholder bool) ([]byte, error) {
	if s.NestedOffset == nil {
		return json.Marshal(s)
	}
	off := *s.NestedOffset
	s.NestedOffset = nil
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	num := "0"
	if !placeholder {
		nb, err := json.Marshal(float32(off))
		if err != nil {
			return nil, err
		}
		num = string(nb)
	}
	if len(num) > nf4OffsetWidth {
		return nil, fmt.Errorf("convert: nested_offset %q wider than %d", num, nf4OffsetWidth)
	}
	for len(num) < nf4OffsetWidth {
		num += " "
	}
	b = append(b[:len(b)-1], []byte(`,"nested_offset":`+num+`}`)...)
	return b, nil
}
