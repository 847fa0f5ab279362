package onnx

import (
	"errors"
	"math"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
	"google.golang.org/protobuf/encoding/protowire"
)

// nestGraphs returns a model whose graph nests depth If-subgraphs.
func nestGraphs(depth int) pb {
	g := pb{}.str(2, "leaf")
	for range depth {
		attr := pb{}.str(1, "then_branch").msg(6, g).varint(20, uint64(AttrTypeGraph))
		node := pb{}.str(4, "If").msg(5, attr)
		g = pb{}.msg(1, node)
	}
	return pb{}.varint(1, 10).msg(7, g)
}

func tensorModel(tensor pb) pb { return pb{}.msg(7, pb{}.msg(5, tensor)) }

func TestMalformed(t *testing.T) {
	manyDims := pb{}
	for range MaxRank + 1 {
		manyDims = manyDims.varint(1, 1)
	}
	f32 := uint64(Float)
	cases := []struct {
		name string
		in   pb
		want error
		at   int64 // byte offset the error must name; -1: don't check
	}{
		{"truncated varint", pb{0x08, 0x80}, ErrTruncated, 0},
		{"length past end", pb{}.varint(1, 1).append(0x3a, 0x05, 0x01), ErrTruncated, 2},
		{"huge length", pb{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrTruncated, 0},
		{"field number 0", pb{0x00, 0x01}, ErrMalformed, 0},
		{"end group", pb{0x0c}, ErrMalformed, 0},
		{"graph twice", pb{}.msg(7, pb{}).msg(7, pb{}), ErrMalformed, 2},
		{"too deep", nestGraphs(MaxDepth), ErrTooDeep, -1},
		{"rank", tensorModel(manyDims.varint(2, f32)), ErrBadTensor, -1},
		{"negative dim", tensorModel(pb{}.varint(1, uint64(math.MaxUint64)).varint(2, f32)), ErrBadTensor, 2},
		{"dims overflow", tensorModel(pb{}.varint(1, 1<<40).varint(1, 1<<40).varint(2, f32)), ErrBadTensor, -1},
		{"raw size", tensorModel(pb{}.varint(1, 2).varint(2, f32).str(9, "abc")), ErrBadTensor, -1},
		{"typed count", tensorModel(pb{}.varint(1, 2).varint(2, f32).fixed32(4, 0)), ErrBadTensor, -1},
		{"typed field", tensorModel(pb{}.varint(1, 1).varint(2, f32).varint(7, 1)), ErrBadTensor, -1},
		{"two places", tensorModel(pb{}.varint(1, 1).varint(2, f32).fixed32(4, 0).str(9, "abcd")), ErrBadTensor, -1},
		{"packed float run", tensorModel(pb{}.varint(2, f32).str(4, "abc")), ErrMalformed, -1},
		{"packed bad varint", tensorModel(pb{}.varint(2, uint64(Int64)).str(7, "\xff")), ErrTruncated, -1},
		{"data_location 2", tensorModel(pb{}.varint(2, f32).varint(14, 2)), ErrBadTensor, -1},
		{"external w/o location", tensorModel(pb{}.varint(2, f32).msg(13, pb{}.str(1, "location").str(2, "x")).varint(14, 0)), ErrBadExternal, -1},
		{"string external", tensorModel(pb{}.varint(1, 1).varint(2, uint64(String)).msg(13, pb{}.str(1, "location").str(2, "x")).varint(14, 1)), ErrBadExternal, -1},
		{"raw and external", tensorModel(pb{}.varint(1, 1).varint(2, f32).str(9, "abcd").msg(13, pb{}.str(1, "location").str(2, "x")).varint(14, 1)), ErrBadTensor, -1},
		{"string raw", tensorModel(pb{}.varint(1, 1).varint(2, uint64(String)).str(9, "x")), ErrBadTensor, -1},
		{"shape rank", pb{}.msg(7, pb{}.msg(11, pb{}.msg(2, pb{}.msg(1, pb{}.msg(2, repeatMsg(1, MaxRank+1)))))), ErrBadTensor, -1},
		{"attr t twice", pb{}.msg(7, pb{}.msg(1, pb{}.msg(5, pb{}.msg(5, pb{}).msg(5, pb{})))), ErrMalformed, -1},
	}
	for _, c := range cases {
		_, err := Unmarshal(c.in)
		var fe *FormatError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) {
			t.Errorf("%s: %v, want %v in a *FormatError", c.name, err, c.want)
			continue
		}
		if fault.ClassOf(err) != fault.Invalid {
			t.Errorf("%s: class %v", c.name, fault.ClassOf(err))
		}
		if c.at >= 0 && fe.Offset != c.at {
			t.Errorf("%s: offset %d, want %d (%v)", c.name, fe.Offset, c.at, err)
		}
	}
	// One level less than the cap is fine: 4 messages per level
	// (graph, node, attribute, graph) plus the model's graph.
	if _, err := Unmarshal(nestGraphs((MaxDepth - 2) / 3)); err != nil {
		t.Errorf("nesting within the cap: %v", err)
	}
}

func repeatMsg(num protowire.Number, n int) pb {
	var b pb
	for range n {
		b = b.msg(num, pb{}.varint(1, 1))
	}
	return b
}

func (b pb) append(x ...byte) pb { return append(b, x...) }

// TestErrorNamesThePlace: the error says which field of which node.
func TestErrorNamesThePlace(t *testing.T) {
	// Tensor "b" (UINT8 [2]) of the If node's "ts" attribute gets 3 bytes
	// of data: written as UINT8 [3], then its dims patched to [2].
	m := sampleModel()
	m.Graph.Nodes[2].Attrs[2].Tensors[1].Raw = []byte{1, 2, 3}
	m.Graph.Nodes[2].Attrs[2].Tensors[1].Dims = []int64{3}
	b := mustMarshal(t, m)
	idx := -1 // dims=3 then data_type=UINT8: only tensor "b" has these bytes
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0x08 && b[i+1] == 0x03 && b[i+2] == 0x10 && b[i+3] == byte(Uint8) {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatal("dims of tensor b not found")
	}
	b[idx+1] = 0x02
	_, err := Unmarshal(b)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Field != "graph.node[2].attribute[2].tensors[1]" || !errors.Is(err, ErrBadTensor) {
		t.Fatalf("error %v (field %q)", err, fe.Field)
	}
}

// TestTruncations: every prefix of a valid model either parses or fails
// with a classified error; none panics.
func TestTruncations(t *testing.T) {
	b := mustMarshal(t, sampleModel())
	for n := range len(b) {
		_, err := Unmarshal(b[:n])
		if err != nil && fault.ClassOf(err) != fault.Invalid {
			t.Fatalf("prefix %d: unclassified error %v", n, err)
		}
	}
}

func TestTypedRanges(t *testing.T) {
	cases := []*Tensor{
		{Name: "i8", DataType: Int8, Dims: []int64{1}, Int32Data: []int32{256}},
		{Name: "u8", DataType: Uint8, Dims: []int64{1}, Int32Data: []int32{-129}},
		{Name: "f16", DataType: Float16, Dims: []int64{1}, Int32Data: []int32{1 << 16}},
		{Name: "u32", DataType: Uint32, Dims: []int64{1}, Uint64Data: []uint64{1 << 32}},
	}
	for _, tt := range cases {
		if _, err := tt.Data(); !errors.Is(err, ErrBadTensor) {
			t.Errorf("%s: %v", tt.Name, err)
		}
	}
	ok := &Tensor{Name: "i16", DataType: Int16, Dims: []int64{2}, Int32Data: []int32{-32768, 65535}}
	if b, err := ok.Data(); err != nil || string(b) != "\x00\x80\xff\xff" {
		t.Errorf("i16: %x, %v", b, err)
	}
}
