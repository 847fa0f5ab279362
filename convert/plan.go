package convert

import (
	"encoding/json"
	"fmt"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// Default block sizes: 128 for int4, 64 for nf4 (bitsandbytes' default).
// The int4 default, with DefaultInt4Method and export's DefaultInt4Accuracy,
// is the CPU decision of docs/accuracy.md: on ONNX Runtime's CPU kernel
// MatMulNBits at block 32 is slower than fp32 and at block 128 faster, and
// hqq's scales and zero points buy back most of what the coarser blocks lose.
const (
	DefaultInt4Block = 128
	DefaultNF4Block  = 64
	nestedBlock      = 256 // bitsandbytes double-quant block
)

// Default 4-bit methods (Options.Method ""): hqq for int4 (so int4 is
// asymmetric by default: --method rtn or mse for symmetric blocks), rtn for
// nf4, whose artifacts bitsandbytes reproduces bit for bit.
const (
	DefaultInt4Method = quant.MethodHQQ
	DefaultNF4Method  = quant.MethodRTN
)

// item is one source tensor and what it becomes.
type item struct {
	src     safetensors.Entry
	role    Role
	scheme  string
	outs    []safetensors.TensorSpec
	quantDQ bool // nf4 with double quant
	rec     *TensorRecord
}

// restSchemeDType maps a float scheme to its safetensors dtype.
func restSchemeDType(s string) safetensors.DType {
	switch s {
	case SchemeFP16:
		return safetensors.F16
	case SchemeBF16:
		return safetensors.BF16
	}
	return safetensors.F32
}

// planItem fills in the outputs of one tensor; it checks that every size is
// representable before anything is allocated.
func planItem(it *item, opt *Options) error {
	t := it.src.TensorInfo
	n := t.NumElements()
	switch it.scheme {
	case SchemeCopy:
		it.outs = []safetensors.TensorSpec{{Name: t.Name, DType: t.DType, Shape: t.Shape}}
	case SchemeFP32, SchemeFP16, SchemeBF16:
		it.outs = []safetensors.TensorSpec{{Name: t.Name, DType: restSchemeDType(it.scheme), Shape: t.Shape}}
	case SchemeInt8:
		rows := t.Shape[0]
		p := prefixOf(t.Name)
		it.outs = []safetensors.TensorSpec{
			{Name: t.Name, DType: safetensors.I8, Shape: t.Shape},
			{Name: p + ".SCB", DType: safetensors.F32, Shape: []int64{rows}},
			{Name: p + ".weight_format", DType: safetensors.U8, Shape: []int64{}},
		}
	case SchemeInt8Ch:
		it.outs = []safetensors.TensorSpec{
			{Name: t.Name, DType: safetensors.I8, Shape: t.Shape},
			{Name: t.Name + "_absmax", DType: safetensors.F32, Shape: []int64{t.Shape[0]}},
		}
	case SchemeInt4:
		nr, k := t.Shape[0], t.Shape[1]
		bs := opt.blockSize()
		kb := (k + int64(bs) - 1) / int64(bs)
		it.outs = []safetensors.TensorSpec{
			{Name: t.Name, DType: safetensors.U8, Shape: []int64{nr, kb, int64(bs / 2)}},
			{Name: t.Name + "_scale", DType: safetensors.F32, Shape: []int64{nr, kb}},
		}
		if opt.Asymmetric {
			it.outs = append(it.outs, safetensors.TensorSpec{Name: t.Name + "_zero_point", DType: safetensors.U8, Shape: []int64{nr, (kb + 1) / 2}})
		}
	case SchemeNF4:
		bs := int64(opt.blockSize())
		blocks := (n + bs - 1) / bs
		it.quantDQ = opt.DoubleQuant
		it.outs = []safetensors.TensorSpec{
			{Name: t.Name, DType: safetensors.U8, Shape: []int64{(n + 1) / 2, 1}},
			{Name: t.Name + ".quant_map", DType: safetensors.F32, Shape: []int64{16}},
		}
		state := nf4State{QuantType: "nf4", BlockSize: int(bs), DType: opt.restTorchDType(), Shape: t.Shape}
		if opt.DoubleQuant {
			it.outs = append(it.outs,
				safetensors.TensorSpec{Name: t.Name + ".absmax", DType: safetensors.U8, Shape: []int64{blocks}},
				safetensors.TensorSpec{Name: t.Name + ".nested_absmax", DType: safetensors.F32, Shape: []int64{(blocks + nestedBlock - 1) / nestedBlock}},
				safetensors.TensorSpec{Name: t.Name + ".nested_quant_map", DType: safetensors.F32, Shape: []int64{256}},
			)
			state.NestedBlockSize = nestedBlock
			state.NestedDType = "float32"
			// The offset is known only after quantizing; its JSON length
			// varies, so the quant_state tensor is sized by a placeholder
			// and the real JSON is padded to it (see nf4StateJSON).
			state.NestedOffset = new(float64)
		} else {
			it.outs = append(it.outs, safetensors.TensorSpec{Name: t.Name + ".absmax", DType: safetensors.F32, Shape: []int64{blocks}})
		}
		js, err := nf4StateJSON(state, true)
		if err != nil {
			return err
		}
		it.outs = append(it.outs, safetensors.TensorSpec{Name: t.Name + ".quant_state.bitsandbytes__nf4", DType: safetensors.U8, Shape: []int64{int64(len(js))}})
	default:
		return fmt.Errorf("convert: internal: unknown scheme %q", it.scheme)
	}
	return nil
}

// nf4State is bitsandbytes' packed QuantState for nf4, the JSON stored in
// P.weight.quant_state.bitsandbytes__nf4 (QuantState.as_dict(packed=True)).
type nf4State struct {
	QuantType       string   `json:"quant_type"`
	BlockSize       int      `json:"blocksize"`
	DType           string   `json:"dtype"`
	Shape           []int64  `json:"shape"`
	NestedBlockSize int      `json:"nested_blocksize,omitempty"`
	NestedDType     string   `json:"nested_dtype,omitempty"`
	NestedOffset    *float64 `json:"nested_offset,omitempty"`
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

// prefixOf strips ".weight" from a Linear weight's name.
func prefixOf(name string) string {
	const w = ".weight"
	if len(name) > len(w) && name[len(name)-len(w):] == w {
		return name[:len(name)-len(w)]
	}
	return name
}
