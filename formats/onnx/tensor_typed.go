package onnx

import (
	"encoding/binary"
	"math"
)

// typedBytes converts the typed field of a checked tensor to raw_data form.
// int32_data holds one element per value for 8- and 16-bit types and one
// packed byte per value for the 4- and 2-bit types; a value outside the
// signed or unsigned range of its width is corrupt.
func (t *Tensor) typedBytes() ([]byte, error) {
	n, _ := t.NumElements()
	size, _ := t.DataType.ByteLen(n)
	out := make([]byte, 0, size) // size is bounded by the typed values already decoded
	le := binary.LittleEndian
	switch {
	case t.FloatData != nil:
		for _, v := range t.FloatData {
			out = le.AppendUint32(out, math.Float32bits(v))
		}
	case t.DoubleData != nil:
		for _, v := range t.DoubleData {
			out = le.AppendUint64(out, math.Float64bits(v))
		}
	case t.Int64Data != nil:
		for _, v := range t.Int64Data {
			out = le.AppendUint64(out, uint64(v))
		}
	case t.Uint64Data != nil:
		for _, v := range t.Uint64Data {
			if t.DataType == Uint32 {
				if v > math.MaxUint32 {
					return nil, t.formatErr(ErrBadTensor, "uint64_data value %d out of range for UINT32", v)
				}
				out = le.AppendUint32(out, uint32(v))
			} else {
				out = le.AppendUint64(out, v)
			}
		}
	case t.Int32Data != nil:
		width := 1 // bytes per int32_data value
		switch t.DataType {
		case Int32:
			width = 4
		case Int16, Uint16, Float16, BFloat16:
			width = 2
		}
		lo, hi := int32(math.MinInt32), int32(math.MaxInt32)
		if width < 4 {
			lo, hi = -1<<(8*width-1), 1<<(8*width)-1
		}
		for _, v := range t.Int32Data {
			if v < lo || v > hi {
				return nil, t.formatErr(ErrBadTensor, "int32_data value %d out of range for %v", v, t.DataType)
			}
			switch width {
			case 4:
				out = le.AppendUint32(out, uint32(v))
			case 2:
				out = le.AppendUint16(out, uint16(v))
			default:
				out = append(out, byte(v))
			}
		}
	default:
		return nil, t.formatErr(ErrUnsupported, "no raw form for %v", t.DataType)
	}
	if int64(len(out)) != size {
		return nil, t.formatErr(ErrBadTensor, "typed data gives %d bytes, want %d", len(out), size)
	}
	return out, nil
}
