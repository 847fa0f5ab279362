package onnx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Marshal encodes m with every tensor inline, except tensors that only have
// an External reference (as Unmarshal leaves them), whose reference is
// written back as it is. It fails with ErrTooLarge past 2 GiB: use
// WriteFile, which moves big initializers to a data file.
func (m *Model) Marshal() ([]byte, error) {
	s := encode(m, nil, false)
	if s.err != nil {
		return nil, s.err
	}
	if s.n > MaxProtoSize {
		return nil, &FormatError{Offset: -1, Msg: fmt.Sprintf("encoding is %d bytes; write it with external data", s.n), Err: ErrTooLarge}
	}
	var buf bytes.Buffer
	buf.Grow(int(s.n))
	if err := s.writeTo(&buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sink receives an encoding: it writes to w, or only counts when w is nil.
// The first error sticks and turns every later call into a no-op.
//
// Encoding takes two passes over the model: a counting pass records the
// size of every submessage in sizes, in the order message is called
// (pre-order), and the writing pass consumes them in the same order.
type sink struct {
	w   writer
	n   int64
	err error
	// sizes are the submessage sizes of the counting pass; next is the
	// writing pass's position in them.
	sizes []int64
	next  int
	// ext places tensors in the external data file (WriteFile); a tensor
	// listed here is written as a reference whatever data it holds.
	ext map[*Tensor]*ExternalRef
	// inline makes tensors that only have an External reference be read
	// and written inline (WriteFile), instead of keeping the reference.
	inline bool
	tmp    [binary.MaxVarintLen64 + 2]byte
}

// writer is what a sink writes to: a *bufio.Writer over a file, or the
// *bytes.Buffer of Marshal.
type writer interface {
	io.Writer
	io.StringWriter
}

// encode runs the counting pass of m and returns the sink, ready for
// writeTo.
func encode(m *Model, ext map[*Tensor]*ExternalRef, inline bool) *sink {
	s := &sink{ext: ext, inline: inline}
	s.model(m)
	return s
}

// writeTo runs the writing pass into w and checks it wrote what the
// counting pass sized.
func (s *sink) writeTo(w writer, m *Model) error {
	size := s.n
	s.w, s.n, s.next = w, 0, 0
	s.model(m)
	if s.err == nil && s.n != size {
		s.err = fmt.Errorf("%w: encoded %d bytes, sized %d (a Source or data file changed)", ErrWrite, s.n, size)
	}
	return s.err
}

func (s *sink) bytes(b []byte) {
	if s.err != nil {
		return
	}
	s.n += int64(len(b))
	if s.w != nil {
		_, s.err = s.w.Write(b)
	}
}

func (s *sink) tag(num protowire.Number, typ protowire.Type) {
	s.bytes(protowire.AppendTag(s.tmp[:0], num, typ))
}

func (s *sink) uvarint(v uint64) { s.bytes(protowire.AppendVarint(s.tmp[:0], v)) }

func (s *sink) varintField(num protowire.Number, v uint64) {
	s.tag(num, protowire.VarintType)
	s.uvarint(v)
}

func (s *sink) bytesField(num protowire.Number, b []byte) {
	s.tag(num, protowire.BytesType)
	s.uvarint(uint64(len(b)))
	s.bytes(b)
}

func (s *sink) stringField(num protowire.Number, v string) {
	s.tag(num, protowire.BytesType)
	s.uvarint(uint64(len(v)))
	if s.err != nil {
		return
	}
	s.n += int64(len(v))
	if s.w != nil {
		_, s.err = s.w.WriteString(v)
	}
}

// message writes a length-delimited submessage that fn encodes.
func (s *sink) message(num protowire.Number, fn func(*sink)) {
	if s.err != nil {
		return
	}
	if s.w == nil {
		i := len(s.sizes)
		s.sizes = append(s.sizes, 0)
		start := s.n
		fn(s)
		size := s.n - start
		s.sizes[i] = size
		s.n += int64(protowire.SizeTag(num) + protowire.SizeVarint(uint64(size)))
		return
	}
	size := s.sizes[s.next]
	s.next++
	s.tag(num, protowire.BytesType)
	s.uvarint(uint64(size))
	before := s.n
	fn(s)
	if s.err == nil && s.n-before != size {
		s.err = fmt.Errorf("%w: field %d encoded %d bytes, sized %d", ErrWrite, num, s.n-before, size)
	}
}

// fields writes a message's known fields in field-number order and its
// unknown fields between them, by number.
type fields struct {
	s *sink
	e *extra
	i int // next unknown field
}

func (s *sink) fields(e *extra) *fields { return &fields{s: s, e: e} }

// at emits the unknown fields numbered below num; call it before writing
// known field num.
func (f *fields) at(num protowire.Number) *sink {
	for f.i < len(f.e.unknown) && f.e.unknown[f.i].num < num {
		f.s.bytes(f.e.unknown[f.i].b)
		f.i++
	}
	return f.s
}

// done emits the remaining unknown fields.
func (f *fields) done() {
	for ; f.i < len(f.e.unknown); f.i++ {
		f.s.bytes(f.e.unknown[f.i].b)
	}
}

func (f *fields) str(num protowire.Number, v string) {
	if v != "" || f.e.zero(num) {
		f.at(num).stringField(num, v)
	}
}

func (f *fields) int64(num protowire.Number, v int64) {
	if v != 0 || f.e.zero(num) {
		f.at(num).varintField(num, uint64(v))
	}
}

func (f *fields) strs(num protowire.Number, v []string) {
	s := f.at(num)
	for _, x := range v {
		s.stringField(num, x)
	}
}

func (f *fields) byteSlices(num protowire.Number, v [][]byte) {
	s := f.at(num)
	for _, x := range v {
		s.bytesField(num, x)
	}
}

// scalars writes a repeated scalar field packed or not: as onnx.proto
// declares it for msg, unless the reader saw it the other way.
func scalars[T number](f *fields, msg msgKind, num protowire.Number, v []T) {
	if len(v) == 0 {
		return
	}
	s := f.at(num)
	packed := defaultPacked(msg, num) != f.e.isFlipped(num)
	typ := wireType[T]()
	if !packed {
		for _, x := range v {
			s.tag(num, typ)
			s.bytes(appendScalar(s.tmp[:0], x))
		}
		return
	}
	size := 0
	switch typ {
	case protowire.Fixed32Type:
		size = 4 * len(v)
	case protowire.Fixed64Type:
		size = 8 * len(v)
	default:
		for _, x := range v {
			size += len(appendScalar(s.tmp[:0], x))
		}
	}
	s.tag(num, protowire.BytesType)
	s.uvarint(uint64(size))
	for _, x := range v {
		s.bytes(appendScalar(s.tmp[:0], x))
	}
}

// appendScalar encodes one element: floats as fixed32/fixed64, integers as
// varints (int32 sign-extended to 64 bits, as protobuf does).
func appendScalar[T number](b []byte, x T) []byte {
	switch v := any(x).(type) {
	case float32:
		return protowire.AppendFixed32(b, math.Float32bits(v))
	case float64:
		return protowire.AppendFixed64(b, math.Float64bits(v))
	case int32:
		return protowire.AppendVarint(b, uint64(int64(v)))
	case int64:
		return protowire.AppendVarint(b, uint64(v))
	case uint64:
		return protowire.AppendVarint(b, v)
	}
	panic("unreachable")
}

func (s *sink) model(m *Model) {
	f := s.fields(&m.extra)
	f.int64(fModelIRVersion, m.IRVersion)
	f.str(fModelProducerName, m.ProducerName)
	f.str(fModelProducerVersion, m.ProducerVersion)
	f.str(fModelDomain, m.Domain)
	f.int64(fModelModelVersion, m.ModelVersion)
	f.str(fModelDocString, m.DocString)
	if m.Graph != nil {
		f.at(fModelGraph).message(fModelGraph, func(s *sink) { s.graph(m.Graph) })
	}
	for _, o := range m.Opsets {
		f.at(fModelOpsetImport).message(fModelOpsetImport, func(s *sink) {
			f := s.fields(&o.extra)
			f.str(fOpsetDomain, o.Domain)
			f.int64(fOpsetVersion, o.Version)
			f.done()
		})
	}
	entries(f, fModelMetadataProps, m.Metadata)
	f.done()
}

func entries(f *fields, num protowire.Number, v []*StringString) {
	for _, e := range v {
		f.at(num).message(num, func(s *sink) {
			f := s.fields(&e.extra)
			f.str(fEntryKey, e.Key)
			f.str(fEntryValue, e.Value)
			f.done()
		})
	}
}

func (s *sink) graph(g *Graph) {
	f := s.fields(&g.extra)
	for _, n := range g.Nodes {
		f.at(fGraphNode).message(fGraphNode, func(s *sink) { s.node(n) })
	}
	f.str(fGraphName, g.Name)
	for _, t := range g.Initializers {
		f.at(fGraphInitializer).message(fGraphInitializer, func(s *sink) { s.tensor(t) })
	}
	f.str(fGraphDocString, g.DocString)
	for _, v := range g.Inputs {
		f.at(fGraphInput).message(fGraphInput, func(s *sink) { s.valueInfo(v) })
	}
	for _, v := range g.Outputs {
		f.at(fGraphOutput).message(fGraphOutput, func(s *sink) { s.valueInfo(v) })
	}
	for _, v := range g.ValueInfo {
		f.at(fGraphValueInfo).message(fGraphValueInfo, func(s *sink) { s.valueInfo(v) })
	}
	f.done()
}

func (s *sink) node(n *Node) {
	f := s.fields(&n.extra)
	f.strs(fNodeInput, n.Inputs)
	f.strs(fNodeOutput, n.Outputs)
	f.str(fNodeName, n.Name)
	f.str(fNodeOpType, n.OpType)
	for _, a := range n.Attrs {
		f.at(fNodeAttribute).message(fNodeAttribute, func(s *sink) { s.attribute(a) })
	}
	f.str(fNodeDocString, n.DocString)
	f.str(fNodeDomain, n.Domain)
	f.done()
}

func (s *sink) attribute(a *Attribute) {
	f := s.fields(&a.extra)
	f.str(fAttrName, a.Name)
	typeField := attrValueField(a.Type)
	if math.Float32bits(a.F) != 0 || typeField == fAttrF || a.zero(fAttrF) {
		f.at(fAttrF).tag(fAttrF, protowire.Fixed32Type)
		s.bytes(protowire.AppendFixed32(s.tmp[:0], math.Float32bits(a.F)))
	}
	if a.I != 0 || typeField == fAttrI || a.zero(fAttrI) {
		f.at(fAttrI).varintField(fAttrI, uint64(a.I))
	}
	if a.S != nil || typeField == fAttrS {
		f.at(fAttrS).bytesField(fAttrS, a.S)
	}
	if a.T != nil {
		f.at(fAttrT).message(fAttrT, func(s *sink) { s.tensor(a.T) })
	}
	if a.G != nil {
		f.at(fAttrG).message(fAttrG, func(s *sink) { s.graph(a.G) })
	}
	scalars(f, kindAttribute, fAttrFloats, a.Floats)
	scalars(f, kindAttribute, fAttrInts, a.Ints)
	f.byteSlices(fAttrStrings, a.Strings)
	for _, t := range a.Tensors {
		f.at(fAttrTensors).message(fAttrTensors, func(s *sink) { s.tensor(t) })
	}
	for _, g := range a.Graphs {
		f.at(fAttrGraphs).message(fAttrGraphs, func(s *sink) { s.graph(g) })
	}
	f.str(fAttrDocString, a.DocString)
	f.int64(fAttrType, int64(a.Type))
	f.str(fAttrRefAttrName, a.RefAttrName)
	f.done()
}

func (s *sink) valueInfo(v *ValueInfo) {
	f := s.fields(&v.extra)
	f.str(fValueInfoName, v.Name)
	if v.hasType() {
		f.at(fValueInfoType).message(fValueInfoType, func(s *sink) {
			f := s.fields(&v.typ)
			if v.hasTensorType() {
				f.at(fTypeTensorType).message(fTypeTensorType, func(s *sink) {
					f := s.fields(&v.tensorType)
					f.int64(fTensorTypeElemType, int64(v.ElemType))
					if v.Shape != nil {
						f.at(fTensorTypeShape).message(fTensorTypeShape, func(s *sink) { s.shape(v) })
					}
					f.done()
				})
			}
			f.done()
		})
	}
	f.str(fValueInfoDocString, v.DocString)
	f.done()
}

func (s *sink) shape(v *ValueInfo) {
	f := s.fields(&v.shape)
	for i := range v.Shape {
		d := &v.Shape[i]
		f.at(fShapeDim).message(fShapeDim, func(s *sink) {
			f := s.fields(&d.extra)
			if d.Param != "" || d.zero(fDimParam) {
				f.str(fDimParam, d.Param)
			} else {
				f.int64(fDimValue, d.Value)
			}
			f.str(fDimDenotation, d.Denotation)
			f.done()
		})
	}
	f.done()
}

func (s *sink) tensor(t *Tensor) {
	if ce := t.check(); ce != nil {
		s.fail(t.formatErr(ce.err, "%s", ce.msg))
		return
	}
	f := s.fields(&t.extra)
	scalars(f, kindTensor, fTensorDims, t.Dims)
	f.int64(fTensorDataType, int64(t.DataType))
	ref := s.ext[t]
	inMemory := t.Raw != nil || t.Source != nil || t.hasTyped()
	if ref == nil && !inMemory && t.External != nil && !s.inline {
		ref = t.External
	}
	if ref == nil {
		scalars(f, kindTensor, fTensorFloatData, t.FloatData)
		scalars(f, kindTensor, fTensorInt32Data, t.Int32Data)
		f.byteSlices(fTensorStringData, t.StringData)
		scalars(f, kindTensor, fTensorInt64Data, t.Int64Data)
	}
	f.str(fTensorName, t.Name)
	if ref == nil {
		switch {
		case t.Raw != nil:
			f.at(fTensorRawData).bytesField(fTensorRawData, t.Raw)
		case t.Source != nil:
			s := f.at(fTensorRawData)
			s.tag(fTensorRawData, protowire.BytesType)
			s.uvarint(uint64(t.RawSize))
			s.stream(t.RawSize, t.writeSource)
		case t.External != nil:
			// inline: read the external bytes into raw_data
			s := f.at(fTensorRawData)
			s.tag(fTensorRawData, protowire.BytesType)
			s.uvarint(uint64(t.External.Length))
			s.stream(t.External.Length, func(w io.Writer) error { return copyTensor(w, t) })
		}
		scalars(f, kindTensor, fTensorDoubleData, t.DoubleData)
		scalars(f, kindTensor, fTensorUint64Data, t.Uint64Data)
	}
	f.str(fTensorDocString, t.DocString)
	if ref != nil {
		entries(f, fTensorExternalData, ref.entriesToWrite())
		f.at(fTensorDataLocation).varintField(fTensorDataLocation, dataLocationExternal)
	} else if t.zero(fTensorDataLocation) {
		f.at(fTensorDataLocation).varintField(fTensorDataLocation, 0)
	}
	f.done()
}

// stream adds n bytes that fn writes; when counting it only adds n.
func (s *sink) stream(n int64, fn func(io.Writer) error) {
	if s.err != nil {
		return
	}
	s.n += n
	if s.w != nil {
		s.err = fn(s.w)
	}
}

func (s *sink) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// entriesToWrite returns the external_data entries: those read from the
// file while the reference is unchanged (keeping keys such as checksum and
// their order), else location, offset and length.
func (r *ExternalRef) entriesToWrite() []*StringString {
	if r.entries != nil && r.orig == [3]any{r.Location, r.Offset, r.Length} {
		return r.entries
	}
	return []*StringString{
		{Key: "location", Value: r.Location},
		{Key: "offset", Value: strconv.FormatInt(r.Offset, 10)},
		{Key: "length", Value: strconv.FormatInt(r.Length, 10)},
	}
}

// copyTensor streams t's bytes (any source) to w.
func copyTensor(w io.Writer, t *Tensor) error {
	if t.Source != nil && t.Raw == nil {
		return t.writeSource(w)
	}
	r, n, err := t.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := io.Copy(w, r)
	if err == nil && m != n {
		err = t.formatErr(ErrBadExternal, "read %d bytes, want %d", m, n)
	}
	return err
}
