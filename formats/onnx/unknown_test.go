package onnx

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// pb builds protobuf bytes by hand, independently of the package's writer.
type pb []byte

func (b pb) varint(num protowire.Number, v uint64) pb {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func (b pb) fixed32(num protowire.Number, v uint32) pb {
	return protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), v)
}

func (b pb) str(num protowire.Number, s string) pb {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func (b pb) msg(num protowire.Number, sub pb) pb {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), sub)
}

// craftedModel has an unknown field in every message type, each at the
// position of its number (canonical order), plus known fields sent with the
// wrong wire type, which must be carried like unknown ones.
func craftedModel() pb {
	entry := pb{}.str(1, "k").str(2, "v").varint(3, 7)
	extEntry := pb{}.str(1, "location").str(2, "w.data").varint(5, 1)
	dim := pb{}.varint(1, 3).str(3, "CHANNEL").str(4, "future")
	shape := pb{}.msg(1, dim).msg(1, pb{}.str(2, "batch")).msg(1, pb{}).varint(2, 9)
	tensorType := pb{}.varint(1, uint64(Float)).msg(2, shape).fixed32(3, 1)
	typ := pb{}.msg(1, tensorType).str(6, "IMAGE")
	seqType := pb{}.msg(4, pb{}.msg(1, typ)) // sequence_type: not modelled
	valueInfo := pb{}.str(1, "x").msg(2, typ).str(3, "doc").msg(4, entry)
	seqInfo := pb{}.str(1, "s").msg(2, seqType)
	tensor := pb{}.varint(1, 2).varint(2, uint64(Uint8)).msg(3, pb{}.varint(1, 0).varint(2, 2)).
		str(8, "t").str(9, "\x01\x02").msg(16, entry)
	extTensor := pb{}.varint(1, 4).varint(2, uint64(Float)).str(8, "e").
		msg(13, extEntry).msg(13, pb{}.str(1, "checksum").str(2, "abc")).varint(14, 1)
	attr := pb{}.str(1, "alpha").fixed32(2, math.Float32bits(0.5)).
		msg(12, pb{}.varint(1, 1)).varint(20, uint64(AttrTypeFloat)).msg(22, pb{}.varint(3, 1))
	node := pb{}.str(1, "x").str(2, "y").str(3, "n0").
		varint(4, 5). // op_type with the wrong wire type
		msg(5, attr).str(7, "com.example").str(8, "overload").msg(9, entry)
	graph := pb{}.msg(1, node).str(2, "g").str(3, "old_input").msg(5, tensor).msg(5, extTensor).
		str(10, "graph doc").msg(11, valueInfo).msg(11, seqInfo).msg(12, valueInfo).
		msg(14, pb{}.str(1, "t")).msg(16, entry)
	opset := pb{}.str(1, "").varint(2, 21).varint(3, 1)
	return pb{}.varint(1, 9).str(2, "crafted").str(3, "").
		msg(7, graph).msg(8, opset).msg(14, entry).
		msg(20, pb{}.msg(1, graph)).str(25, "function").varint(1000, 1)
}

func TestUnknownFieldsKept(t *testing.T) {
	in := []byte(craftedModel())
	m := mustUnmarshal(t, in)
	out := mustMarshal(t, m)
	if !bytes.Equal(in, out) {
		t.Fatalf("round trip changed the bytes:\n in %x\nout %x", in, out)
	}
	// The known fields were read as such, the others kept aside.
	g := m.Graph
	checks := []struct {
		what     string
		ok       bool
		unknowns int
	}{
		{"model", m.IRVersion == 9 && m.ProducerName == "crafted" && m.zero(fModelProducerVersion), len(m.unknown)},
		{"opset", m.Opsets[0].Version == 21 && m.Opsets[0].zero(fOpsetDomain), len(m.Opsets[0].unknown)},
		{"metadata", m.Metadata[0].Key == "k" && m.Metadata[0].Value == "v", len(m.Metadata[0].unknown)},
		{"graph", g.Name == "g" && g.DocString == "graph doc" && len(g.Inputs) == 2, len(g.unknown)},
		{"node", g.Nodes[0].Name == "n0" && g.Nodes[0].OpType == "" && g.Nodes[0].Domain == "com.example", len(g.Nodes[0].unknown)},
		{"attribute", g.Nodes[0].Attrs[0].F == 0.5 && g.Nodes[0].Attrs[0].Type == AttrTypeFloat, len(g.Nodes[0].Attrs[0].unknown)},
		{"tensor", string(g.Initializers[0].Raw) == "\x01\x02", len(g.Initializers[0].unknown)},
		{"external", g.Initializers[1].External.Location == "w.data" && g.Initializers[1].External.Length == 16, len(g.Initializers[1].External.entries[0].unknown)},
		{"value_info", g.Inputs[0].DocString == "doc", len(g.Inputs[0].unknown)},
		{"type", g.Inputs[0].ElemType == Float, len(g.Inputs[0].typ.unknown)},
		{"tensor_type", len(g.Inputs[0].Shape) == 3, len(g.Inputs[0].tensorType.unknown)},
		{"shape", g.Inputs[0].Shape[1].Param == "batch" && !g.Inputs[0].Shape[2].IsKnown(), len(g.Inputs[0].shape.unknown)},
		{"dim", g.Inputs[0].Shape[0].Value == 3 && g.Inputs[0].Shape[0].Denotation == "CHANNEL", len(g.Inputs[0].Shape[0].unknown)},
		{"sequence type", g.Inputs[1].ElemType == 0 && g.Inputs[1].Shape == nil, len(g.Inputs[1].typ.unknown)},
	}
	wantUnknowns := map[string]int{"model": 3, "graph": 3, "node": 3, "attribute": 2, "tensor": 2}
	for _, c := range checks {
		want := wantUnknowns[c.what]
		if want == 0 {
			want = 1
		}
		if !c.ok || c.unknowns != want {
			t.Errorf("%s: fields ok %v, %d unknown fields, want %d", c.what, c.ok, c.unknowns, want)
		}
	}
	// Edits around unknown fields keep them.
	g.Nodes[0].OpType = "Relu"
	m2 := mustUnmarshal(t, mustMarshal(t, m))
	if n := m2.Graph.Nodes[0]; n.OpType != "Relu" || len(n.unknown) != 3 {
		t.Errorf("after edit: op %q, %d unknown", n.OpType, len(n.unknown))
	}
}

// TestUnknownFieldsOutOfOrder: unknown fields that come before lower-numbered
// known ones are moved to their numeric place (semantics unchanged), and the
// result is stable.
func TestUnknownFieldsOutOfOrder(t *testing.T) {
	in := []byte(pb{}.varint(99, 5).str(50, "x").varint(1, 8).str(2, "p").str(50, "y"))
	m := mustUnmarshal(t, in)
	out := mustMarshal(t, m)
	want := []byte(pb{}.varint(1, 8).str(2, "p").str(50, "x").str(50, "y").varint(99, 5))
	if !bytes.Equal(out, want) {
		t.Fatalf("got %x, want %x", out, want)
	}
	if again := mustMarshal(t, mustUnmarshal(t, out)); !bytes.Equal(again, out) {
		t.Fatal("not stable")
	}
}

// TestPackedFormsKept: a writer using proto3 rules packs dims and ints, and
// one may write the *_data fields unpacked; both are read and written back as
// they came.
func TestPackedFormsKept(t *testing.T) {
	packedDims := protowire.AppendVarint(protowire.AppendVarint(nil, 1), 2)
	tensor := pb{}.msg(1, pb(packedDims)).varint(2, uint64(Float)).
		fixed32(4, math.Float32bits(1)).fixed32(4, math.Float32bits(2)) // float_data unpacked
	tensor = append(tensor, pb{}.str(8, "t")...)
	attr := pb{}.str(1, "a").msg(8, pb(protowire.AppendVarint(protowire.AppendVarint(nil, 1), 1<<40))).varint(20, uint64(AttrTypeInts))
	node := pb{}.str(4, "Op").msg(5, attr)
	in := []byte(pb{}.msg(7, pb{}.msg(1, node).msg(5, tensor)))
	m, err := Unmarshal(in)
	if err != nil {
		t.Fatal(err)
	}
	tt := m.Graph.Initializers[0]
	if len(tt.Dims) != 2 || tt.Dims[1] != 2 || len(tt.FloatData) != 2 || tt.FloatData[1] != 2 {
		t.Fatalf("tensor %+v", tt)
	}
	if a := m.Graph.Nodes[0].Attrs[0]; len(a.Ints) != 2 || a.Ints[1] != 1<<40 {
		t.Fatalf("attr %+v", a)
	}
	if out := mustMarshal(t, m); !bytes.Equal(out, in) {
		t.Fatalf("round trip:\n in %x\nout %x", in, out)
	}
}
