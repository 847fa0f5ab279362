package onnx

import (
	"io"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Model is ModelProto, the root of an .onnx file.
type Model struct {
	IRVersion       int64
	Opsets          []*OpsetID // opset_import
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           *Graph
	Metadata        []*StringString // metadata_props
	extra
}

// OpsetID is OperatorSetIdProto: an operator set the model imports. The
// default ONNX domain is "" ("ai.onnx").
type OpsetID struct {
	Domain  string
	Version int64
	extra
}

// Opset returns an OpsetID for domain and version.
func Opset(domain string, version int64) *OpsetID {
	return &OpsetID{Domain: domain, Version: version}
}

// StringString is StringStringEntryProto, a key/value pair (metadata_props,
// external_data).
type StringString struct {
	Key, Value string
	extra
}

// Graph is GraphProto. Nodes must be in topological order.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	DocString    string
	Inputs       []*ValueInfo
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo
	extra
}

// AddNode appends a node built by NewNode and returns it.
func (g *Graph) AddNode(opType string, inputs, outputs []string, attrs ...*Attribute) *Node {
	n := NewNode(opType, inputs, outputs, attrs...)
	g.Nodes = append(g.Nodes, n)
	return n
}

// Initializer returns the initializer called name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Node is NodeProto: one operator application. An empty input name is an
// omitted optional input.
type Node struct {
	Inputs    []string
	Outputs   []string
	Name      string
	OpType    string
	Attrs     []*Attribute
	DocString string
	Domain    string // "" is the default ONNX domain
	extra
}

// NewNode returns a node of opType in the default domain. Inputs and outputs
// are copied.
func NewNode(opType string, inputs, outputs []string, attrs ...*Attribute) *Node {
	return &Node{
		OpType:  opType,
		Inputs:  slices.Clone(inputs),
		Outputs: slices.Clone(outputs),
		Attrs:   attrs,
	}
}

// Attr returns the attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// Attribute types, numbered as in onnx.proto.
const (
	AttrTypeUndefined     AttrType = 0
	AttrTypeFloat         AttrType = 1
	AttrTypeInt           AttrType = 2
	AttrTypeString        AttrType = 3
	AttrTypeTensor        AttrType = 4
	AttrTypeGraph         AttrType = 5
	AttrTypeFloats        AttrType = 6
	AttrTypeInts          AttrType = 7
	AttrTypeStrings       AttrType = 8
	AttrTypeTensors       AttrType = 9
	AttrTypeGraphs        AttrType = 10
	AttrTypeSparseTensor  AttrType = 11 // value carried as an unknown field
	AttrTypeSparseTensors AttrType = 12 // value carried as an unknown field
	AttrTypeTypeProto     AttrType = 13 // value carried as an unknown field
	AttrTypeTypeProtos    AttrType = 14 // value carried as an unknown field
)

// Attribute is AttributeProto. Type says which value field is meaningful;
// the constructors (Float, Int, …) set it.
type Attribute struct {
	Name        string
	Type        AttrType
	F           float32
	I           int64
	S           []byte
	T           *Tensor
	G           *Graph
	Floats      []float32
	Ints        []int64
	Strings     [][]byte
	Tensors     []*Tensor
	Graphs      []*Graph
	DocString   string
	RefAttrName string // set in function bodies only
	extra
}

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeFloat, F: v}
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeInt, I: v}
}

// AttrString returns a STRING attribute.
func AttrString(name, v string) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeString, S: []byte(v)}
}

// AttrTensor returns a TENSOR attribute (the value of a Constant node).
func AttrTensor(name string, t *Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeTensor, T: t}
}

// AttrGraph returns a GRAPH attribute (a subgraph of If, Loop, Scan).
func AttrGraph(name string, g *Graph) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeGraph, G: g}
}

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeFloats, Floats: slices.Clone(v)}
}

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeInts, Ints: slices.Clone(v)}
}

// AttrStrings returns a STRINGS attribute.
func AttrStrings(name string, v ...string) *Attribute {
	a := &Attribute{Name: name, Type: AttrTypeStrings}
	for _, s := range v {
		a.Strings = append(a.Strings, []byte(s))
	}
	return a
}

// AttrTensors returns a TENSORS attribute.
func AttrTensors(name string, v ...*Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeTensors, Tensors: slices.Clone(v)}
}

// AttrGraphs returns a GRAPHS attribute.
func AttrGraphs(name string, v ...*Graph) *Attribute {
	return &Attribute{Name: name, Type: AttrTypeGraphs, Graphs: slices.Clone(v)}
}

// Tensor is TensorProto: a named constant. Its bytes come from exactly one
// of, in the order the writer looks for them:
//
//   - Raw: raw_data, little-endian, sub-byte types packed low bits first;
//   - Source with RawSize: raw_data produced while the file is written, for
//     initializers too big to hold twice (Source must write exactly RawSize
//     bytes, the same bytes on every call);
//   - the typed fields FloatData … StringData, as onnx.proto assigns them
//     to data types (the reader keeps them as it finds them);
//   - External: bytes in an external data file, read on demand.
type Tensor struct {
	Name      string
	DataType  DataType
	Dims      []int64
	DocString string

	Raw     []byte
	Source  func(w io.Writer) error
	RawSize int64
	// SourceKey, when not empty, names what Source writes: two Source
	// tensors with the same key write the same bytes, so a caller that
	// keeps written tensors (a cache of external data) can reuse one for
	// the other without running Source. It is never written to a file.
	SourceKey string

	FloatData  []float32 // FLOAT, COMPLEX64
	Int32Data  []int32   // INT32 and narrower types, FLOAT16, BFLOAT16, FLOAT8*, BOOL
	Int64Data  []int64   // INT64
	DoubleData []float64 // DOUBLE, COMPLEX128
	Uint64Data []uint64  // UINT32, UINT64
	StringData [][]byte  // STRING

	External *ExternalRef
	extra
}

// ExternalRef says where an external tensor's bytes live. Location is the
// path relative to the model's directory, slash-separated, as in the file.
type ExternalRef struct {
	Location string
	Offset   int64
	Length   int64

	// dir is the directory of the model file that named this reference,
	// set by ReadFile; "" after Unmarshal, which cannot resolve it.
	dir string
	// entries are the external_data entries as read (with keys such as
	// checksum that this package does not interpret); they are written back
	// unchanged while Location, Offset and Length still hold the values
	// read from them (orig).
	entries []*StringString
	orig    [3]any
}

// ValueInfo is ValueInfoProto with a tensor type: a graph input, output or
// annotated intermediate value. Shape nil means the rank is unknown; an
// empty, non-nil Shape is a scalar.
type ValueInfo struct {
	Name      string
	ElemType  DataType
	Shape     []Dim
	DocString string
	extra

	// Unknown fields and presence of the nested TypeProto, its
	// TypeProto.Tensor and TensorShapeProto, which ValueInfo flattens.
	typ, tensorType, shape extra
}

// TensorValue returns a ValueInfo of a tensor with element type elem and the
// given dimensions (none: a scalar).
func TensorValue(name string, elem DataType, shape ...Dim) *ValueInfo {
	return &ValueInfo{Name: name, ElemType: elem, Shape: append([]Dim{}, shape...)}
}

// Dim is TensorShapeProto.Dimension. The zero Dim is a dimension of unknown
// size; use Fixed and Symbolic to build the others.
type Dim struct {
	Value      int64  // dim_value, when Param is ""
	Param      string // dim_param: a symbolic size such as "batch"
	Denotation string
	extra
}

// Fixed returns a dimension of size v (zero included).
func Fixed(v int64) Dim {
	d := Dim{Value: v}
	d.setZero(fDimValue, v == 0)
	return d
}

// Symbolic returns a dimension named param.
func Symbolic(param string) Dim { return Dim{Param: param} }

// IsKnown reports whether d has a size or a name.
func (d Dim) IsKnown() bool { return d.Param != "" || d.Value != 0 || d.zero(fDimValue) }

// extra holds what a message carries beyond its modelled fields.
type extra struct {
	// unknown are fields this package does not model (or that came with an
	// unexpected wire type), each as its full tag+value bytes, ordered by
	// field number (stable). The writer interleaves them by number.
	unknown []rawField
	// zeros has bit n set when singular field n was on the wire with its
	// zero value (proto2 field presence), so that it is written back.
	zeros uint64
	// flipped has bit n set when repeated scalar field n came packed where
	// onnx.proto declares it unpacked, or the reverse.
	flipped uint64
}

type rawField struct {
	num protowire.Number
	b   []byte
}

func (e *extra) zero(n protowire.Number) bool { return n < 64 && e.zeros&(1<<n) != 0 }

func (e *extra) setZero(n protowire.Number, on bool) {
	if n >= 64 {
		return
	}
	if on {
		e.zeros |= 1 << n
	} else {
		e.zeros &^= 1 << n
	}
}

func (e *extra) isFlipped(n protowire.Number) bool { return n < 64 && e.flipped&(1<<n) != 0 }

func (e *extra) empty() bool { return len(e.unknown) == 0 && e.zeros == 0 }

// addUnknown inserts f after every unknown field with a number ≤ f.num, so
// the list stays sorted and stable.
func (e *extra) addUnknown(f rawField) {
	i := len(e.unknown)
	for i > 0 && e.unknown[i-1].num > f.num {
		i--
	}
	e.unknown = slices.Insert(e.unknown, i, f)
}
