package onnx

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The cross-check decodes our bytes with google.golang.org/protobuf's own
// parser, through a descriptor of the onnx.proto subset written out here by
// hand (proto2, with the [packed = true] options onnx.proto has). It shares
// no code with this package's reader or writer.

type fd struct {
	name  string
	num   int32
	typ   descriptorpb.FieldDescriptorProto_Type
	msg   string // message type name for TYPE_MESSAGE
	rep   bool
	packd bool
}

func onnxSubsetDescriptor(t testing.TB, packAll bool) protoreflect.FileDescriptor {
	const (
		i64 = descriptorpb.FieldDescriptorProto_TYPE_INT64
		i32 = descriptorpb.FieldDescriptorProto_TYPE_INT32
		u64 = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		f32 = descriptorpb.FieldDescriptorProto_TYPE_FLOAT
		f64 = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		byt = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	messages := []struct {
		name   string
		fields []fd
	}{
		{"ModelProto", []fd{
			{"ir_version", 1, i64, "", false, false}, {"producer_name", 2, str, "", false, false},
			{"producer_version", 3, str, "", false, false}, {"domain", 4, str, "", false, false},
			{"model_version", 5, i64, "", false, false}, {"doc_string", 6, str, "", false, false},
			{"graph", 7, msg, "GraphProto", false, false}, {"opset_import", 8, msg, "OperatorSetIdProto", true, false},
			{"metadata_props", 14, msg, "StringStringEntryProto", true, false},
		}},
		{"OperatorSetIdProto", []fd{{"domain", 1, str, "", false, false}, {"version", 2, i64, "", false, false}}},
		{"StringStringEntryProto", []fd{{"key", 1, str, "", false, false}, {"value", 2, str, "", false, false}}},
		{"GraphProto", []fd{
			{"node", 1, msg, "NodeProto", true, false}, {"name", 2, str, "", false, false},
			{"initializer", 5, msg, "TensorProto", true, false}, {"doc_string", 10, str, "", false, false},
			{"input", 11, msg, "ValueInfoProto", true, false}, {"output", 12, msg, "ValueInfoProto", true, false},
			{"value_info", 13, msg, "ValueInfoProto", true, false},
		}},
		{"NodeProto", []fd{
			{"input", 1, str, "", true, false}, {"output", 2, str, "", true, false},
			{"name", 3, str, "", false, false}, {"op_type", 4, str, "", false, false},
			{"attribute", 5, msg, "AttributeProto", true, false}, {"doc_string", 6, str, "", false, false},
			{"domain", 7, str, "", false, false},
		}},
		{"AttributeProto", []fd{
			{"name", 1, str, "", false, false}, {"f", 2, f32, "", false, false}, {"i", 3, i64, "", false, false},
			{"s", 4, byt, "", false, false}, {"t", 5, msg, "TensorProto", false, false}, {"g", 6, msg, "GraphProto", false, false},
			{"floats", 7, f32, "", true, false}, {"ints", 8, i64, "", true, false}, {"strings", 9, byt, "", true, false},
			{"tensors", 10, msg, "TensorProto", true, false}, {"graphs", 11, msg, "GraphProto", true, false},
			{"doc_string", 13, str, "", false, false}, {"type", 20, i32, "", false, false},
			{"ref_attr_name", 21, str, "", false, false},
		}},
		{"TensorProto", []fd{
			{"dims", 1, i64, "", true, false}, {"data_type", 2, i32, "", false, false},
			{"float_data", 4, f32, "", true, true}, {"int32_data", 5, i32, "", true, true},
			{"string_data", 6, byt, "", true, false}, {"int64_data", 7, i64, "", true, true},
			{"name", 8, str, "", false, false}, {"raw_data", 9, byt, "", false, false},
			{"double_data", 10, f64, "", true, true}, {"uint64_data", 11, u64, "", true, true},
			{"doc_string", 12, str, "", false, false},
			{"external_data", 13, msg, "StringStringEntryProto", true, false}, {"data_location", 14, i32, "", false, false},
		}},
		{"ValueInfoProto", []fd{{"name", 1, str, "", false, false}, {"type", 2, msg, "TypeProto", false, false}, {"doc_string", 3, str, "", false, false}}},
		{"TypeProto", []fd{{"tensor_type", 1, msg, "TypeProtoTensor", false, false}}},
		{"TypeProtoTensor", []fd{{"elem_type", 1, i32, "", false, false}, {"shape", 2, msg, "TensorShapeProto", false, false}}},
		{"TensorShapeProto", []fd{{"dim", 1, msg, "Dimension", true, false}}},
		{"Dimension", []fd{{"dim_value", 1, i64, "", false, false}, {"dim_param", 2, str, "", false, false}, {"denotation", 3, str, "", false, false}}},
	}
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("onnx_subset.proto"),
		Package: proto.String("onnxsubset"),
		Syntax:  proto.String("proto2"),
	}
	for _, m := range messages {
		dp := &descriptorpb.DescriptorProto{Name: proto.String(m.name)}
		for _, f := range m.fields {
			label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
			if f.rep {
				label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
			}
			field := &descriptorpb.FieldDescriptorProto{
				Name: proto.String(f.name), Number: proto.Int32(f.num), Label: label.Enum(), Type: f.typ.Enum(),
			}
			if f.msg != "" {
				field.TypeName = proto.String(".onnxsubset." + f.msg)
			}
			scalarRep := f.rep && f.typ != msg && f.typ != str && f.typ != byt
			if f.packd || packAll && scalarRep {
				field.Options = &descriptorpb.FieldOptions{Packed: proto.Bool(true)}
			}
			dp.Field = append(dp.Field, field)
		}
		file.MessageType = append(file.MessageType, dp)
	}
	fdesc, err := protodesc.NewFile(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fdesc
}

func decodeDynamic(t *testing.T, fdesc protoreflect.FileDescriptor, b []byte) *dynamicpb.Message {
	t.Helper()
	m := dynamicpb.NewMessage(fdesc.Messages().ByName("ModelProto"))
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("protobuf rejects our encoding: %v", err)
	}
	return m
}

// noUnknown fails if any message in m has unknown fields: every byte we
// wrote matched a declared field and wire type.
func noUnknown(t *testing.T, m protoreflect.Message, path string) {
	if len(m.GetUnknown()) > 0 {
		t.Errorf("%s: %d bytes of fields protobuf did not recognise", path, len(m.GetUnknown()))
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			for i := 0; i < v.List().Len(); i++ {
				noUnknown(t, v.List().Get(i).Message(), path+"."+string(fd.Name()))
			}
		} else {
			noUnknown(t, v.Message(), path+"."+string(fd.Name()))
		}
		return true
	})
}

func TestCrossCheckWithProtobuf(t *testing.T) {
	fdesc := onnxSubsetDescriptor(t, false)
	ours := mustMarshal(t, sampleModel())
	dm := decodeDynamic(t, fdesc, ours)
	noUnknown(t, dm, "model")

	// Values, read through protoreflect.
	get := func(m protoreflect.Message, name string) protoreflect.Value {
		return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
	}
	if v := get(dm, "ir_version").Int(); v != 10 {
		t.Errorf("ir_version %d", v)
	}
	g := get(dm, "graph").Message()
	want := sampleModel().Graph
	inits := get(g, "initializer").List()
	if inits.Len() != len(want.Initializers) {
		t.Fatalf("%d initializers", inits.Len())
	}
	for i, w := range want.Initializers {
		tm := inits.Get(i).Message()
		if name := get(tm, "name").String(); name != w.Name {
			t.Errorf("initializer %d: name %q, want %q", i, name, w.Name)
		}
		dims := get(tm, "dims").List()
		if dims.Len() != len(w.Dims) {
			t.Errorf("%s: %d dims", w.Name, dims.Len())
		}
		for j := range w.Dims {
			if dims.Get(j).Int() != w.Dims[j] {
				t.Errorf("%s: dims[%d]", w.Name, j)
			}
		}
		if w.Raw != nil && !bytes.Equal(get(tm, "raw_data").Bytes(), w.Raw) {
			t.Errorf("%s: raw_data differs", w.Name)
		}
		if got := get(tm, "float_data").List(); got.Len() != len(w.FloatData) {
			t.Errorf("%s: %d float_data", w.Name, got.Len())
		}
		if got := get(tm, "int32_data").List(); got.Len() != len(w.Int32Data) {
			t.Errorf("%s: %d int32_data", w.Name, got.Len())
		} else {
			for j, x := range w.Int32Data {
				if int32(got.Get(j).Int()) != x {
					t.Errorf("%s: int32_data[%d]", w.Name, j)
				}
			}
		}
		if got := get(tm, "uint64_data").List(); got.Len() > 0 && got.Get(0).Uint() != w.Uint64Data[0] {
			t.Errorf("%s: uint64_data", w.Name)
		}
	}
	conv := get(g, "node").List().Get(0).Message()
	attrs := get(conv, "attribute").List()
	for i, w := range want.Nodes[0].Attrs {
		am := attrs.Get(i).Message()
		if get(am, "name").String() != w.Name || get(am, "type").Int() != int64(w.Type) {
			t.Errorf("attribute %d: %v", i, am)
		}
		if w.Type == AttrTypeFloat && float32(get(am, "f").Float()) != w.F {
			t.Errorf("attribute %s: f", w.Name)
		}
		if w.Type == AttrTypeFloat && !am.Has(am.Descriptor().Fields().ByName("f")) {
			t.Errorf("attribute %s: f not present", w.Name)
		}
		if w.Type == AttrTypeInts && get(am, "ints").List().Len() != len(w.Ints) {
			t.Errorf("attribute %s: ints", w.Name)
		}
	}
	in0 := get(g, "input").List().Get(0).Message()
	shape := get(get(get(in0, "type").Message(), "tensor_type").Message(), "shape").Message()
	if d := get(shape, "dim").List(); d.Len() != 4 || get(d.Get(0).Message(), "dim_param").String() != "batch" ||
		get(d.Get(1).Message(), "dim_value").Int() != 3 {
		t.Errorf("input shape %v", shape)
	}

	// protobuf writes the same bytes: same field order, same packing.
	theirs, err := proto.MarshalOptions{Deterministic: true}.Marshal(dm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(theirs, ours) {
		t.Errorf("protobuf re-encodes our %d bytes as %d different bytes", len(ours), len(theirs))
	}
}

// TestCrossCheckProto3Packing: protobuf encodes with every repeated scalar
// packed (what a proto3 onnx.proto3 user writes); we read it and keep it.
func TestCrossCheckProto3Packing(t *testing.T) {
	dm := decodeDynamic(t, onnxSubsetDescriptor(t, false), mustMarshal(t, sampleModel()))
	packedDesc := onnxSubsetDescriptor(t, true)
	b, err := proto.Marshal(dm)
	if err != nil {
		t.Fatal(err)
	}
	// Re-type the message under the all-packed descriptor and encode.
	pm := dynamicpb.NewMessage(packedDesc.Messages().ByName("ModelProto"))
	if err := proto.Unmarshal(b, pm); err != nil {
		t.Fatal(err)
	}
	packed, err := proto.MarshalOptions{Deterministic: true}.Marshal(pm)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(packed, b) {
		t.Fatal("the all-packed encoding is the same as the proto2 one: the test tests nothing")
	}
	m := mustUnmarshal(t, packed)
	if !equalDeep(withoutFlips(mustUnmarshal(t, packed)), sampleModel()) {
		t.Error("proto3-packed model read differently")
	}
	if out := mustMarshal(t, m); !bytes.Equal(out, packed) {
		t.Error("proto3-packed model not written back as it came")
	}
}

// withoutFlips clears the packing records of every tensor and attribute.
func withoutFlips(m *Model) *Model {
	var graph func(g *Graph)
	graph = func(g *Graph) {
		for _, t := range g.Initializers {
			t.flipped = 0
		}
		for _, n := range g.Nodes {
			for _, a := range n.Attrs {
				a.flipped = 0
				if a.T != nil {
					a.T.flipped = 0
				}
				for _, t := range a.Tensors {
					t.flipped = 0
				}
				if a.G != nil {
					graph(a.G)
				}
				for _, sub := range a.Graphs {
					graph(sub)
				}
			}
		}
	}
	graph(m.Graph)
	return m
}
