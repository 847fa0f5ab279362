package onnx

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Unmarshal decodes a ModelProto. The model keeps references into b
// (raw_data, bytes fields, unknown fields): do not modify b afterwards.
// External data references are kept but cannot be read (Tensor.Data fails
// with ErrNoData); ReadFile resolves them against the model's directory.
func Unmarshal(b []byte) (*Model, error) { return unmarshal("", b) }

func unmarshal(file string, b []byte) (*Model, error) {
	if len(b) > MaxProtoSize {
		return nil, &FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("%d bytes", len(b)), Err: ErrTooLarge}
	}
	d := &decoder{file: file, buf: b}
	m := &Model{}
	if err := d.model(m, 0, len(b)); err != nil {
		return nil, err
	}
	return m, nil
}

type decoder struct {
	file  string
	buf   []byte
	depth int
	path  []frame // the messages entered, for error messages
}

type frame struct {
	name  string
	index int // position in a repeated field, -1 for a singular one
}

// field is one field of a message, located in decoder.buf.
type field struct {
	num protowire.Number
	typ protowire.Type
	at  int // tag
	val int // value (after the tag)
	end int // first byte after the field
}

func (f field) is(num protowire.Number, typ protowire.Type) bool { return f.num == num && f.typ == typ }

// scalarOrPacked reports whether f is field num of a repeated scalar with
// wire type typ, in either its unpacked form or packed (bytes).
func (f field) scalarOrPacked(num protowire.Number, typ protowire.Type) bool {
	return f.num == num && (f.typ == typ || f.typ == protowire.BytesType)
}

// fields calls fn for each field of the message in buf[start:end]. Every
// length is checked against end before fn sees it.
func (d *decoder) fields(start, end int, fn func(f field) error) error {
	for pos := start; pos < end; {
		num, typ, n := protowire.ConsumeTag(d.buf[pos:end])
		if n < 0 {
			return d.wireErr(pos, "tag", n)
		}
		m := protowire.ConsumeFieldValue(num, typ, d.buf[pos+n:end])
		if m < 0 {
			return d.wireErr(pos, "field "+strconv.Itoa(int(num)), m)
		}
		f := field{num: num, typ: typ, at: pos, val: pos + n, end: pos + n + m}
		if err := fn(f); err != nil {
			return err
		}
		pos = f.end
	}
	return nil
}

func (d *decoder) wireErr(at int, what string, code int) error {
	err := protowire.ParseError(code)
	sentinel := ErrMalformed
	if errors.Is(err, io.ErrUnexpectedEOF) {
		sentinel = ErrTruncated
	}
	return d.errorf(at, what, sentinel, "%v", err)
}

func (d *decoder) errorf(at int, field string, sentinel error, format string, args ...any) error {
	return &FormatError{File: d.file, Offset: int64(at), Field: d.fieldPath(field), Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

func (d *decoder) fieldPath(last string) string {
	var b strings.Builder
	for _, f := range d.path {
		b.WriteString(f.name)
		if f.index >= 0 {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
		b.WriteByte('.')
	}
	b.WriteString(last)
	return strings.TrimSuffix(b.String(), ".")
}

// sub decodes the message in bytes field f with fn, one level deeper.
func (d *decoder) sub(f field, name string, index int, fn func(start, end int) error) error {
	if d.depth >= MaxDepth {
		return d.errorf(f.at, name, ErrTooDeep, "more than %d levels", MaxDepth)
	}
	start, end := d.payload(f)
	d.depth++
	d.path = append(d.path, frame{name, index})
	err := fn(start, end)
	d.path = d.path[:len(d.path)-1]
	d.depth--
	return err
}

// payload returns the bounds of a bytes field's content (already checked by
// fields).
func (d *decoder) payload(f field) (int, int) {
	_, n := protowire.ConsumeVarint(d.buf[f.val:f.end])
	return f.val + n, f.end
}

func (d *decoder) bytes(f field) []byte {
	s, e := d.payload(f)
	return d.buf[s:e:e]
}

func (d *decoder) str(f field) string { return string(d.bytes(f)) }

func (d *decoder) uvarint(f field) uint64 {
	v, _ := protowire.ConsumeVarint(d.buf[f.val:f.end])
	return v
}

func (d *decoder) raw(f field) rawField { return rawField{num: f.num, b: d.buf[f.at:f.end:f.end]} }

func (d *decoder) setString(e *extra, f field, dst *string) {
	*dst = d.str(f)
	e.setZero(f.num, *dst == "")
}

func (d *decoder) setInt64(e *extra, f field, dst *int64) {
	*dst = int64(d.uvarint(f))
	e.setZero(f.num, *dst == 0)
}

// number is the element type of a repeated scalar field.
type number interface {
	~int32 | ~int64 | ~uint64 | ~float32 | ~float64
}

// wireType is the protobuf wire type of one T, for the reader and the
// writer alike: fixed32 for float, fixed64 for double, varint otherwise.
func wireType[T number]() protowire.Type {
	var zero T
	switch any(zero).(type) {
	case float32:
		return protowire.Fixed32Type
	case float64:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// appendScalars decodes one occurrence of a repeated scalar field, packed
// or not, onto dst. The element count of a packed run is known before any
// allocation and bounded by its length in bytes.
func appendScalars[T number](d *decoder, e *extra, msg msgKind, f field, dst []T, name string) ([]T, error) {
	packed := f.typ == protowire.BytesType
	if packed != defaultPacked(msg, f.num) && f.num < 64 && (!packed || f.end-f.val > 1) {
		e.flipped |= 1 << f.num // (an empty packed run writes nothing back)
	}
	elem := wireType[T]()
	if !packed {
		return append(dst, scalar[T](d.buf[f.val:f.end], elem)), nil
	}
	p := d.bytes(f)
	var count int
	switch elem {
	case protowire.Fixed32Type:
		if len(p)%4 != 0 {
			return dst, d.errorf(f.at, name, ErrMalformed, "packed fixed32 run of %d bytes", len(p))
		}
		count = len(p) / 4
	case protowire.Fixed64Type:
		if len(p)%8 != 0 {
			return dst, d.errorf(f.at, name, ErrMalformed, "packed fixed64 run of %d bytes", len(p))
		}
		count = len(p) / 8
	default:
		if len(p) > 0 && p[len(p)-1] >= 0x80 {
			return dst, d.errorf(f.at, name, ErrTruncated, "packed varint run ends inside a value")
		}
		for _, c := range p {
			if c < 0x80 {
				count++
			}
		}
	}
	if count == 0 {
		return dst, nil
	}
	out := make([]T, len(dst), len(dst)+count)
	copy(out, dst)
	for len(p) > 0 {
		var n int
		switch elem {
		case protowire.Fixed32Type:
			n = 4
		case protowire.Fixed64Type:
			n = 8
		default:
			_, n = protowire.ConsumeVarint(p)
			if n < 0 {
				return dst, d.wireErr(f.at, name, n)
			}
		}
		out = append(out, scalar[T](p[:n], elem))
		p = p[n:]
	}
	return out, nil
}

// scalar decodes one validated varint, fixed32 or fixed64 value as T:
// varints are truncated the way protobuf does for int32 fields.
func scalar[T number](b []byte, typ protowire.Type) T {
	var zero T
	switch typ {
	case protowire.Fixed32Type:
		v, _ := protowire.ConsumeFixed32(b)
		if _, ok := any(zero).(float32); ok {
			return T(math.Float32frombits(v))
		}
		return T(v)
	case protowire.Fixed64Type:
		v, _ := protowire.ConsumeFixed64(b)
		if _, ok := any(zero).(float64); ok {
			return T(math.Float64frombits(v))
		}
		return T(v)
	}
	v, _ := protowire.ConsumeVarint(b)
	switch any(zero).(type) {
	case int32:
		return T(int32(v))
	case int64:
		return T(int64(v))
	}
	return T(v)
}
