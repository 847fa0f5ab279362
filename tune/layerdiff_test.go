package tune

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func openWithData(model []byte, dir string) (verify.Runner, error) {
	s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: 1, ExternalDataDir: dir})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// exportAt exports the trained fixture at p into a temporary directory.
func exportAt(t *testing.T, src string, p convert.Precision) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), string(p))
	if _, err := convert.Export(t.Context(), src, dir, convert.ExportOptions{Precision: p}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// damage copies an int8 export with one layer's weight scale multiplied by
// f: that layer's weights are all f times too large, the rest untouched.
func damage(t *testing.T, export, layer string, f float32) string {
	t.Helper()
	m, err := onnx.ReadFile(filepath.Join(export, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, init := range m.Graph.Initializers {
		if init.Name != layer+".weight_scale" {
			continue
		}
		b, err := init.Data()
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, len(b)/4)
		for j := range v {
			v[j] = f * float32frombits(b[4*j:])
		}
		m.Graph.Initializers[i] = onnx.TensorF32(init.Name, init.Dims, v)
		found = true
	}
	if !found {
		t.Fatalf("no %s.weight_scale in %s", layer, export)
	}
	out := filepath.Join(t.TempDir(), "damaged")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteFile(filepath.Join(out, "model.onnx"), m, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "preprocessor_config.json", "quantpack.json"} {
		b, err := os.ReadFile(filepath.Join(export, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func float32frombits(b []byte) float32 {
	return math32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}

// TestDiffLayersFindsDamagedLayer: in an int8 export of the trained
// fixture whose one layer has a wrong weight scale (1.3×: a 30% error in
// that layer's output, nothing elsewhere), that layer ranks first by the
// error it introduces, far above every layer of the same export left
// intact, though the layers after it carry its error on (their output
// error is as large). Its weight SQNR column still reads the artifact's
// (the damage is in the export only): the output ranking finds what the
// weight statistics cannot.
func TestDiffLayersFindsDamagedLayer(t *testing.T) {
	requireORT(t)
	src, _ := trained(t)
	images := filepath.Join(filepath.Dir(src), "images")
	fp32 := exportAt(t, src, convert.FP32)
	int8 := exportAt(t, src, convert.Int8)
	const bad = "vit.encoder.layer.1.attention.attention.value"
	cand := damage(t, int8, bad, 1.3)
	ls, d, err := DiffLayers(t.Context(), DiffOptions{Baseline: fp32, Candidate: cand, Images: images, Open: openWithData})
	if err != nil {
		t.Fatal(err)
	}
	if d.Error != "" || d.Samples != DefaultDiffSamples || d.Unmatched != 0 || d.Matched != len(ls) || len(ls) < 10 {
		t.Fatalf("diff %+v with %d layers", d, len(ls))
	}
	if ls[0].Name != bad {
		for _, l := range ls[:5] {
			t.Logf("%d %s introduced %.4g (in %.4g, out %.4g)", l.Rank, l.Name, l.Introduced, l.InputRelErr, l.OutputRelErr)
		}
		t.Fatalf("the damaged layer %s is not ranked first", bad)
	}
	// A 1.3× weight makes the output 30% off: relative error 0.3 (the
	// int8 rounding adds ~1%, the input's error is the int8 error of
	// the layers before).
	if top := ls[0]; top.Introduced < 0.25 || top.OutputRelErr > 0.35 || top.WeightSQNRdB == nil {
		t.Fatalf("damaged layer: %+v", top)
	}
	// The next layer (the attention output projection) sees the damaged
	// value: its own output error is large, but it introduced little.
	for _, l := range ls {
		if l.Name == "vit.encoder.layer.1.attention.output.dense" && (l.InputRelErr < 0.1 || l.Introduced > ls[0].Introduced/5) {
			t.Fatalf("the layer after the damage: %+v", l)
		}
	}
	// Undamaged, every layer introduces an order of magnitude less.
	ok, _, err := DiffLayers(t.Context(), DiffOptions{Baseline: fp32, Candidate: int8, Images: images, Open: openWithData})
	if err != nil {
		t.Fatal(err)
	}
	if ok[0].Introduced > ls[0].Introduced/10 {
		t.Fatalf("undamaged int8: %s introduces %.4g, the damaged layer %.4g", ok[0].Name, ok[0].Introduced, ls[0].Introduced)
	}
}

// TestDiffLayersMatchesEveryForm: layers are matched by weight name across
// every graph form the exporter writes (MatMul+Add, DynamicQuantizeMatMul,
// MatMulNBits, MatMulBnb4, fp16 values), none is left unmatched, and an
// export compared with itself introduces no error anywhere.
func TestDiffLayersMatchesEveryForm(t *testing.T) {
	requireORT(t)
	src, _ := trained(t)
	fp32 := exportAt(t, src, convert.FP32)
	self, _, err := DiffLayers(t.Context(), DiffOptions{Baseline: fp32, Candidate: fp32, Samples: 2, Open: openWithData})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range self {
		if l.OutputRelErr != 0 || l.Introduced != 0 {
			t.Fatalf("FP32 against itself: %+v", l)
		}
	}
	for _, p := range []convert.Precision{convert.FP16, convert.Int4, convert.NF4} {
		ls, d, err := DiffLayers(t.Context(), DiffOptions{Baseline: fp32, Candidate: exportAt(t, src, p), Samples: 2, Open: openWithData})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if d.Unmatched != 0 || d.Matched != len(self) {
			t.Fatalf("%s: %+v, FP32 has %d layers", p, d, len(self))
		}
		for _, l := range ls {
			if l.OutputRelErr <= 0 || l.OutputCosine < 0.9 {
				t.Fatalf("%s: %+v", p, l)
			}
		}
	}
}

func math32(u uint32) float32 { return math.Float32frombits(u) }

// TestFindLayers: a layer is a weight-applying node found through its
// weight's name, whatever form quantization gave it — MatMul on "P.weight.T"
// with its bias Add, DequantizeLinear(int8) → MatMul with a QDQ input, an
// fp16 MatMulNBits — and its input is traced back past the activation's
// Quantize/Dequantize; a LayerNormalization's ".weight" is not a layer.
func TestFindLayers(t *testing.T) {
	g := &onnx.Graph{Initializers: []*onnx.Tensor{
		onnx.TensorF32("a.weight.T", []int64{2, 2}, make([]float32, 4)),
		onnx.TensorF32("a.bias", []int64{2}, make([]float32, 2)),
		onnx.TensorF32("ln.weight", []int64{2}, make([]float32, 2)),
		onnx.TensorI8("b.weight.T", []int64{2, 2}, make([]int8, 4)),
		onnx.ScalarF32("b.weight_scale", 1), onnx.ScalarF32("x_scale", 1),
		onnx.TensorU8("c.weight", []int64{2, 1, 1}, make([]uint8, 2)),
		onnx.TensorF16("c.weight_scale", []int64{2}, make([]uint16, 2)),
	}}
	g.AddNode("MatMul", []string{"x", "a.weight.T"}, []string{"a/mm"})
	g.AddNode("Add", []string{"a/mm", "a.bias"}, []string{"a/add"})
	g.AddNode("LayerNormalization", []string{"a/add", "ln.weight"}, []string{"ln"})
	g.AddNode("QuantizeLinear", []string{"ln", "x_scale"}, []string{"ln/q"})
	g.AddNode("DequantizeLinear", []string{"ln/q", "x_scale"}, []string{"ln/dq"})
	g.AddNode("DequantizeLinear", []string{"b.weight.T", "b.weight_scale"}, []string{"b/w"})
	g.AddNode("MatMul", []string{"ln/dq", "b/w"}, []string{"b/mm"})
	g.AddNode("MatMulNBits", []string{"b/mm", "c.weight", "c.weight_scale"}, []string{"c/out"})
	ls := findLayers(g)
	want := []graphLayer{
		{key: "a", op: "MatMul", in: &onnx.ValueInfo{Name: "x", ElemType: onnx.Float}, out: &onnx.ValueInfo{Name: "a/add", ElemType: onnx.Float}},
		{key: "b", op: "MatMul", in: &onnx.ValueInfo{Name: "ln", ElemType: onnx.Float}, out: &onnx.ValueInfo{Name: "b/mm", ElemType: onnx.Float}},
		{key: "c", op: "MatMulNBits", in: &onnx.ValueInfo{Name: "b/mm", ElemType: onnx.Float16}, out: &onnx.ValueInfo{Name: "c/out", ElemType: onnx.Float16}},
	}
	if len(ls) != len(want) {
		t.Fatalf("%d layers, want %d: %+v", len(ls), len(want), ls)
	}
	for i, w := range want {
		l := ls[i]
		if l.key != w.key || l.op != w.op || l.in.Name != w.in.Name || l.in.ElemType != w.in.ElemType ||
			l.out.Name != w.out.Name || l.out.ElemType != w.out.ElemType {
			t.Errorf("layer %d: %s %s %s/%v → %s/%v, want %s %s %s/%v → %s/%v", i, l.key, l.op, l.in.Name, l.in.ElemType,
				l.out.Name, l.out.ElemType, w.key, w.op, w.in.Name, w.in.ElemType, w.out.Name, w.out.ElemType)
		}
	}
}
