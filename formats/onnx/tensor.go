package onnx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorRaw returns a tensor whose raw_data is raw (not copied).
func TensorRaw(name string, dt DataType, dims []int64, raw []byte) *Tensor {
	if raw == nil {
		raw = []byte{}
	}
	return &Tensor{Name: name, DataType: dt, Dims: cloneDims(dims), Raw: raw}
}

// TensorSource returns a tensor of size bytes that src writes when the
// model is written (see Tensor.Source).
func TensorSource(name string, dt DataType, dims []int64, size int64, src func(io.Writer) error) *Tensor {
	return &Tensor{Name: name, DataType: dt, Dims: cloneDims(dims), Source: src, RawSize: size}
}

// cloneDims copies dims; a scalar's dims are nil, as the reader leaves them.
func cloneDims(dims []int64) []int64 {
	if len(dims) == 0 {
		return nil
	}
	return slices.Clone(dims)
}

// TensorF32 returns a FLOAT tensor holding v (copied, little-endian).
func TensorF32(name string, dims []int64, v []float32) *Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return TensorRaw(name, Float, dims, b)
}

// TensorF64 returns a DOUBLE tensor holding v.
func TensorF64(name string, dims []int64, v []float64) *Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return TensorRaw(name, Double, dims, b)
}

// TensorF16 returns a FLOAT16 tensor of IEEE half-precision bit patterns.
func TensorF16(name string, dims []int64, bits []uint16) *Tensor {
	return TensorRaw(name, Float16, dims, u16Bytes(bits))
}

// TensorBF16 returns a BFLOAT16 tensor of bfloat16 bit patterns.
func TensorBF16(name string, dims []int64, bits []uint16) *Tensor {
	return TensorRaw(name, BFloat16, dims, u16Bytes(bits))
}

func u16Bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

// TensorI32 returns an INT32 tensor holding v.
func TensorI32(name string, dims []int64, v []int32) *Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return TensorRaw(name, Int32, dims, b)
}

// TensorI64 returns an INT64 tensor holding v.
func TensorI64(name string, dims []int64, v []int64) *Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return TensorRaw(name, Int64, dims, b)
}

// TensorU8 returns a UINT8 tensor holding v (copied).
func TensorU8(name string, dims []int64, v []uint8) *Tensor {
	return TensorRaw(name, Uint8, dims, slices.Clone(v))
}

// TensorI8 returns an INT8 tensor holding v.
func TensorI8(name string, dims []int64, v []int8) *Tensor {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return TensorRaw(name, Int8, dims, b)
}

// ScalarF32 returns a 0-dim FLOAT tensor.
func ScalarF32(name string, v float32) *Tensor { return TensorF32(name, nil, []float32{v}) }

// ScalarI64 returns a 0-dim INT64 tensor.
func ScalarI64(name string, v int64) *Tensor { return TensorI64(name, nil, []int64{v}) }

// NumElements returns the product of Dims (1 for a scalar).
func (t *Tensor) NumElements() (int64, error) {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return 0, t.formatErr(ErrBadTensor, "negative dim %d", d)
		}
		if d == 0 {
			return 0, nil
		}
	}
	for _, d := range t.Dims {
		if n > math.MaxInt64/d {
			return 0, t.formatErr(ErrBadTensor, "element count of dims %v overflows", t.Dims)
		}
		n *= d
	}
	return n, nil
}

// DataSize returns the length of the tensor's raw bytes (what Data returns).
func (t *Tensor) DataSize() (int64, error) {
	if ce := t.check(); ce != nil {
		return 0, t.formatErr(ce.err, "%s", ce.msg)
	}
	switch {
	case t.Raw != nil:
		return int64(len(t.Raw)), nil
	case t.Source != nil:
		return t.RawSize, nil
	case t.External != nil && !t.hasTyped():
		return t.External.Length, nil
	}
	n, _ := t.NumElements()
	if want, ok := t.DataType.ByteLen(n); ok {
		return want, nil
	}
	return 0, t.formatErr(ErrUnsupported, "no raw form for data type %v", t.DataType)
}

// Data returns the tensor's bytes in raw_data form (little-endian, sub-byte
// types packed low bits first), wherever they are: raw_data (returned
// as is, not copied), Source, the typed fields or external data.
func (t *Tensor) Data() ([]byte, error) {
	if ce := t.check(); ce != nil {
		return nil, t.formatErr(ce.err, "%s", ce.msg)
	}
	if t.DataType == String {
		return nil, t.formatErr(ErrUnsupported, "STRING tensors have no raw form (see StringData)")
	}
	switch {
	case t.Raw != nil:
		return t.Raw, nil
	case t.Source != nil:
		var buf bytes.Buffer
		buf.Grow(int(t.RawSize))
		if err := t.writeSource(&buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case t.hasTyped():
		return t.typedBytes()
	case t.External != nil:
		r, n, err := t.Open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		b := make([]byte, n) // n was checked against the data file's size
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, t.formatErr(ErrBadExternal, "reading %s: %v", t.External.Location, err)
		}
		return b, nil
	}
	if n, _ := t.NumElements(); n == 0 {
		return []byte{}, nil
	}
	return nil, t.formatErr(ErrNoData, "no raw_data, typed data or external data")
}

// Open returns a reader of the tensor's bytes and their length. For an
// external tensor it streams from the data file, which it checks first:
// inside the model's directory (symlinks resolved), a regular file, long
// enough for Offset+Length.
func (t *Tensor) Open() (io.ReadCloser, int64, error) {
	if t.External == nil || t.Raw != nil || t.Source != nil || t.hasTyped() {
		b, err := t.Data()
		if err != nil {
			return nil, 0, err
		}
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
	if ce := t.check(); ce != nil {
		return nil, 0, t.formatErr(ce.err, "%s", ce.msg)
	}
	return t.External.open(t.Name)
}

func (t *Tensor) formatErr(sentinel error, format string, args ...any) error {
	return &FormatError{Offset: -1, Field: fmt.Sprintf("tensor %q", t.Name), Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// writeSource runs t.Source into w and checks it wrote RawSize bytes.
func (t *Tensor) writeSource(w io.Writer) error {
	cw := &countWriter{w: w, limit: t.RawSize}
	if err := t.Source(cw); err != nil {
		return fmt.Errorf("onnx: tensor %q: source: %w", t.Name, err)
	}
	if cw.n != t.RawSize {
		return t.formatErr(ErrWrite, "source wrote %d bytes, RawSize is %d", cw.n, t.RawSize)
	}
	return nil
}

// countWriter passes at most limit bytes to w and counts them.
type countWriter struct {
	w     io.Writer
	n     int64
	limit int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.limit-c.n {
		return 0, fmt.Errorf("%w: source writes more than its RawSize (%d bytes)", ErrWrite, c.limit)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (t *Tensor) hasTyped() bool {
	return t.FloatData != nil || t.Int32Data != nil || t.Int64Data != nil ||
		t.DoubleData != nil || t.Uint64Data != nil || t.StringData != nil
}

// checkError is a tensor inconsistency: a sentinel and a detail.
type checkError struct {
	err error
	msg string
}

func bad(format string, args ...any) *checkError {
	return &checkError{err: ErrBadTensor, msg: fmt.Sprintf(format, args...)}
}

// typedField returns the typed field that holds values of dt and how many
// of its elements n values take (onnx.proto, TensorProto): complex types
// take two, 4-bit types pack two per int32_data element, 2-bit types four.
func typedField(dt DataType, n int64) (protowire.Number, int64) {
	switch dt {
	case Float:
		return fTensorFloatData, n
	case Complex64:
		return fTensorFloatData, 2 * n
	case Double:
		return fTensorDoubleData, n
	case Complex128:
		return fTensorDoubleData, 2 * n
	case Int64:
		return fTensorInt64Data, n
	case Uint32, Uint64:
		return fTensorUint64Data, n
	case String:
		return fTensorStringData, n
	case Uint4, Int4, Float4E2M1:
		return fTensorInt32Data, (n + 1) / 2
	case Uint2, Int2:
		return fTensorInt32Data, (n + 3) / 4
	}
	return fTensorInt32Data, n
}

// check reports the first inconsistency between dims, data type and data.
func (t *Tensor) check() *checkError {
	if len(t.Dims) > MaxRank {
		return bad("%d dims, more than %d", len(t.Dims), MaxRank)
	}
	n, err := t.NumElements()
	if err != nil {
		return bad("dims %v: negative or overflowing", t.Dims)
	}
	typed := [...]struct {
		num protowire.Number
		len int
	}{
		{fTensorFloatData, len(t.FloatData)}, {fTensorInt32Data, len(t.Int32Data)},
		{fTensorInt64Data, len(t.Int64Data)}, {fTensorDoubleData, len(t.DoubleData)},
		{fTensorUint64Data, len(t.Uint64Data)}, {fTensorStringData, len(t.StringData)},
	}
	places := 0
	var typedNum protowire.Number
	var typedLen int
	for _, f := range typed {
		if f.len > 0 {
			places++
			typedNum, typedLen = f.num, f.len
		}
	}
	for _, set := range []bool{t.Raw != nil, t.Source != nil} {
		if set {
			places++
		}
	}
	// In-memory data replaces an external reference (a caller may set Raw
	// on a tensor ReadFile returned); the reader rejects files with both.
	external := t.External != nil && places == 0
	if external {
		places++
	}
	if places > 1 {
		return bad("data stored in %d places", places)
	}
	if !t.DataType.Known() {
		return nil // a newer type: carried as is, not interpreted
	}
	wantField, wantCount := typedField(t.DataType, n)
	if typedNum != 0 {
		if typedNum != wantField {
			return bad("data type %v stored in field %d", t.DataType, typedNum)
		}
		if got := int64(typedLen); got != wantCount {
			return bad("%d typed values for dims %v of %v, want %d", got, t.Dims, t.DataType, wantCount)
		}
		return nil
	}
	if t.DataType == String {
		if places > 0 {
			return bad("STRING data outside string_data")
		}
		return nil
	}
	want, ok := t.DataType.ByteLen(n)
	if !ok {
		return bad("byte size of dims %v of %v overflows", t.Dims, t.DataType)
	}
	var got int64
	switch {
	case t.Raw != nil:
		got = int64(len(t.Raw))
	case t.Source != nil:
		got = t.RawSize
	case external:
		got = t.External.Length
	default:
		return nil
	}
	if got != want {
		return bad("%d bytes of data for dims %v of %v, want %d", got, t.Dims, t.DataType, want)
	}
	return nil
}
