package onnx

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTripEveryKind(t *testing.T) {
	want := sampleModel()
	b := mustMarshal(t, want)
	got := mustUnmarshal(t, b)
	if !equalDeep(got, want) {
		t.Fatal("model read back differs from the model written")
	}
	if b2 := mustMarshal(t, got); !bytes.Equal(b, b2) {
		t.Fatal("re-marshalling a read model changed its bytes")
	}
	// A spot check that does not go through equalDeep.
	conv := got.Graph.Nodes[0]
	if a := conv.Attr("kernel_shape"); a == nil || a.Type != AttrTypeInts || len(a.Ints) != 2 || a.Ints[1] != 16 {
		t.Errorf("kernel_shape = %+v", a)
	}
	if a := conv.Attr("beta"); a == nil || !math.IsInf(float64(a.F), -1) {
		t.Errorf("beta = %+v", a)
	}
	if sub := got.Graph.Nodes[2].Attr("then_branch").G; sub.Name != "body" || sub.Nodes[0].OpType != "Relu" {
		t.Errorf("subgraph = %+v", sub)
	}
}

// TestDataForms checks Tensor.Data on every storage form against bytes
// spelled out by hand from the onnx.proto rules.
func TestDataForms(t *testing.T) {
	le32 := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, x)
		}
		return b
	}
	cases := []struct {
		name string
		want []byte
	}{
		{"w_f32", le32(0x3f800000, 0xc0000000, 0x40600000, 0x7f800000, 0, 0x80000000)},
		{"w_f16", []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7e}},
		{"shape", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x03, 0, 0, 0, 0, 0, 0}},
		{"i8", []byte{0x80, 0xff, 0x00, 0x7f}},
		{"eps", le32(math.Float32bits(1e-12))},
		{"empty", []byte{}},
		{"typed_f32", le32(0x3fc00000, 0xc0000000)},
		{"typed_f16", []byte{0x00, 0x3c, 0xff, 0xfb}},
		{"typed_i8", []byte{0x80, 0x05, 0x7f}},
		{"typed_int4", []byte{0x21, 0x0f}},
		{"typed_i64", []byte{0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0, 0}},
		{"typed_u32", []byte{0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0}},
		{"typed_u64", bytes.Repeat([]byte{0xff}, 8)},
		{"typed_c64", le32(0x3f800000, 0x40000000)},
		{"typed_f64", binary.LittleEndian.AppendUint64(nil, math.Float64bits(-1e300))},
	}
	m := mustUnmarshal(t, mustMarshal(t, sampleModel()))
	for _, c := range cases {
		tensor := m.Graph.Initializer(c.name)
		got, err := tensor.Data()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: Data = %x, want %x", c.name, got, c.want)
		}
		if n, err := tensor.DataSize(); err != nil || n != int64(len(c.want)) {
			t.Errorf("%s: DataSize = %d, %v; want %d", c.name, n, err, len(c.want))
		}
	}
	if _, err := m.Graph.Initializer("labels").Data(); err == nil {
		t.Error("Data of a STRING tensor: no error")
	}
}

// TestThirdPartyModels reads models written by PyTorch's exporter,
// skl2onnx and onnx.helper and writes them back byte for byte: the writer
// uses the field order and packing of the reference implementation, and
// nothing is lost.
func TestThirdPartyModels(t *testing.T) {
	for _, path := range thirdPartyModels(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Unmarshal(b)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		out, err := m.Marshal()
		if err != nil {
			t.Errorf("%s: Marshal: %v", filepath.Base(path), err)
			continue
		}
		if !bytes.Equal(out, b) {
			t.Errorf("%s: round trip changed the bytes (%d → %d)", filepath.Base(path), len(b), len(out))
		}
		if m.Graph == nil || len(m.Opsets) == 0 || m.IRVersion < 3 {
			t.Errorf("%s: graph %v, opsets %d, IR %d", filepath.Base(path), m.Graph != nil, len(m.Opsets), m.IRVersion)
			continue
		}
		err = walkTensors(m.Graph, func(tensor *Tensor) error {
			if tensor.DataType == String {
				return nil
			}
			_, err := tensor.Data()
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
}

func TestWriteFileDeterministic(t *testing.T) {
	sum := func(dir string) [2][32]byte {
		p := filepath.Join(dir, "model.onnx")
		if err := WriteFile(p, bigSample(), WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		var out [2][32]byte
		for i, name := range []string{p, p + ".data"} {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = sha256.Sum256(b)
		}
		return out
	}
	if a, b := sum(t.TempDir()), sum(t.TempDir()); a != b {
		t.Fatalf("two writes of the same model differ: %x vs %x", a, b)
	}
}

// bigSample is sampleModel with initializers above the external threshold,
// one of them produced by a Source.
func bigSample() *Model {
	m := sampleModel()
	g := m.Graph
	w := make([]float32, 3000)
	for i := range w {
		w[i] = float32(i) / 7
	}
	g.Initializers = append(g.Initializers,
		TensorF32("big_f32", []int64{3, 1000}, w),
		TensorSource("big_src", Uint8, []int64{5000}, 5000, patternSource(5000, 1)),
		&Tensor{Name: "big_typed", DataType: Int64, Dims: []int64{300}, Int64Data: make([]int64, 300)},
	)
	body := g.Nodes[2].Attr("then_branch").G
	body.Initializers = append(body.Initializers, TensorF32("body_big", []int64{1000}, w[:1000]))
	return m
}
