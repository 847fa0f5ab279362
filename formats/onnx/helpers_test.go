package onnx

import (
	"math"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
)

// sampleModel builds a model with every attribute type, every way of
// storing tensor data, subgraphs, symbolic and unknown dims, metadata and
// several opsets. Every tensor holds in-memory data, so a read-back model
// must be deep-equal to it.
func sampleModel() *Model {
	body, body2 := newBody(), newBody()
	other := &Graph{Name: "other", Outputs: []*ValueInfo{{Name: "o"}}}
	other.AddNode("Identity", []string{"x"}, []string{"o"})

	g := &Graph{
		Name:      "main",
		DocString: "a graph",
		Inputs: []*ValueInfo{
			TensorValue("pixel_values", Float, Symbolic("batch"), Fixed(3), Fixed(224), Fixed(224)),
			TensorValue("scalar_in", Int64),
			{Name: "unranked", ElemType: Float16},
			TensorValue("odd", BFloat16, Dim{}, Fixed(0), Dim{Param: "p", Denotation: "DATA_BATCH"}),
		},
		Outputs:   []*ValueInfo{TensorValue("logits", Float, Symbolic("batch"), Fixed(1000))},
		ValueInfo: []*ValueInfo{{Name: "hidden", ElemType: Float, DocString: "between"}},
		Initializers: []*Tensor{
			TensorF32("w_f32", []int64{2, 3}, []float32{1, -2, 3.5, float32(math.Inf(1)), 0, negZero32}),
			TensorF16("w_f16", []int64{3}, []uint16{0x3c00, 0xc000, 0x7e00}),
			TensorBF16("w_bf16", []int64{2}, []uint16{0x3f80, 0xbf80}),
			TensorF64("w_f64", []int64{1}, []float64{math.Pi}),
			TensorI64("shape", []int64{2}, []int64{-1, 768}),
			TensorI32("i32", []int64{2}, []int32{math.MinInt32, 7}),
			TensorU8("u8", []int64{4}, []uint8{0, 1, 254, 255}),
			TensorI8("i8", []int64{2, 2}, []int8{-128, -1, 0, 127}),
			TensorRaw("bool", Bool, []int64{3}, []byte{1, 0, 1}),
			TensorRaw("int4", Int4, []int64{3}, []byte{0x21, 0x0f}), // 3 nibbles, low first
			TensorRaw("uint2", Uint2, []int64{5}, []byte{0xe4, 0x03}),
			TensorRaw("fp8", Float8E4M3FN, []int64{2}, []byte{0x38, 0xb8}),
			TensorRaw("empty", Float, []int64{0, 4}, nil),
			ScalarF32("eps", 1e-12),
			ScalarI64("axis", -1),
			{Name: "typed_f32", DataType: Float, Dims: []int64{2}, FloatData: []float32{1.5, -2}},
			{Name: "typed_f16", DataType: Float16, Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xfbff}},
			{Name: "typed_i8", DataType: Int8, Dims: []int64{3}, Int32Data: []int32{-128, 5, 127}},
			{Name: "typed_int4", DataType: Int4, Dims: []int64{3}, Int32Data: []int32{0x21, 0x0f}},
			{Name: "typed_i64", DataType: Int64, Dims: []int64{2}, Int64Data: []int64{math.MinInt64, 1}},
			{Name: "typed_f64", DataType: Double, Dims: []int64{1}, DoubleData: []float64{-1e300}},
			{Name: "typed_u32", DataType: Uint32, Dims: []int64{2}, Uint64Data: []uint64{math.MaxUint32, 3}},
			{Name: "typed_u64", DataType: Uint64, Dims: []int64{1}, Uint64Data: []uint64{math.MaxUint64}},
			{Name: "typed_c64", DataType: Complex64, Dims: []int64{1}, FloatData: []float32{1, 2}},
			{Name: "labels", DataType: String, Dims: []int64{2}, StringData: [][]byte{[]byte("cat"), []byte("")}, DocString: "class names"},
		},
	}
	g.AddNode("Conv", []string{"pixel_values", "w_f32", ""}, []string{"c"},
		AttrInts("kernel_shape", 16, 16),
		AttrInts("pads"),
		AttrInt("group", 0),
		AttrFloat("alpha", 0),
		AttrFloat("beta", float32(math.Inf(-1))),
		AttrFloats("scales", 1, 0.5, negZero32),
		AttrString("auto_pad", "NOTSET"),
		AttrString("empty", ""),
		AttrStrings("names", "a", "", "ç"),
	).Name = "conv0"
	n := g.AddNode("Constant", nil, []string{"k"}, AttrTensor("value", TensorI64("", []int64{1}, []int64{42})))
	n.DocString = "a constant"
	g.AddNode("If", []string{"cond"}, []string{"y"},
		AttrGraph("then_branch", body), AttrGraphs("branches", other, body2),
		AttrTensors("ts", ScalarF32("a", 1), TensorU8("b", []int64{2}, []uint8{9, 8})))
	ms := g.AddNode("MatMulNBits", []string{"x", "w"}, []string{"y"}, AttrInt("bits", 4), AttrInt("block_size", 32))
	ms.Domain = "com.microsoft"
	ref := &Attribute{Name: "to", Type: AttrTypeInt, RefAttrName: "target", DocString: "from the function"}
	g.AddNode("Cast", []string{"x"}, []string{"z"}, ref)

	return &Model{
		IRVersion:       10,
		Opsets:          []*OpsetID{Opset("", 21), Opset("com.microsoft", 1)},
		ProducerName:    "quantpack",
		ProducerVersion: "test",
		Domain:          "ai.quantpack",
		ModelVersion:    3,
		DocString:       "sample",
		Graph:           g,
		Metadata:        []*StringString{{Key: "precision", Value: "int4"}, {Key: "empty", Value: ""}},
	}
}

func newBody() *Graph {
	body := &Graph{
		Name:    "body",
		Inputs:  []*ValueInfo{TensorValue("x", Float, Symbolic("n"))},
		Outputs: []*ValueInfo{TensorValue("y", Float, Symbolic("n"))},
		Initializers: []*Tensor{
			TensorF32("body_w", []int64{2}, []float32{0.5, -0.25}),
		},
	}
	body.AddNode("Relu", []string{"x"}, []string{"y"})
	return body
}

// equalDeep is reflect.DeepEqual, except that floats compare by value with
// NaN equal to NaN (and signed zeros told apart), and funcs by nil-ness.
func equalDeep(a, b any) bool { return diffDeep(a, b) == "" }

// diffDeep returns the path of the first difference equalDeep finds, or "".
func diffDeep(a, b any) string {
	var path []string
	if eqValue(reflect.ValueOf(a), reflect.ValueOf(b), &path) {
		return ""
	}
	var s strings.Builder
	for i := len(path) - 1; i >= 0; i-- {
		s.WriteString(path[i])
	}
	return "model" + s.String()
}

func eqValue(a, b reflect.Value, path *[]string) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y && math.Signbit(x) == math.Signbit(y) || math.IsNaN(x) && math.IsNaN(y)
	case reflect.Func:
		return a.IsNil() == b.IsNil()
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return eqValue(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !eqValue(a.Index(i), b.Index(i), path) {
				*path = append(*path, "["+strconv.Itoa(i)+"]")
				return false
			}
		}
		return true
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			if !eqValue(a.Index(i), b.Index(i), path) {
				*path = append(*path, "["+strconv.Itoa(i)+"]")
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !eqValue(a.Field(i), b.Field(i), path) {
				*path = append(*path, "."+a.Type().Field(i).Name)
				return false
			}
		}
		return true
	case reflect.Map:
		return a.Len() == 0 && b.Len() == 0
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	}
	panic("equalDeep: unhandled kind " + a.Kind().String())
}

// thirdPartyModels returns .onnx files written by other tools (PyTorch's
// exporter, skl2onnx, onnx.helper): the test data of the onnxruntime_go
// module this repository already requires. It skips when the module is not
// in the module cache, and fails instead when QUANTPACK_CI=1.
func thirdPartyModels(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	dir := strings.TrimSpace(string(out))
	var files []string
	if err == nil && dir != "" {
		files, _ = filepath.Glob(filepath.Join(dir, "test_data", "*.onnx"))
	}
	if len(files) == 0 {
		msg := "onnxruntime_go test_data models not in the module cache (go mod download github.com/yalue/onnxruntime_go)"
		testenv.SkipOrFail(t, "%s", msg)
	}
	return files
}

func mustMarshal(t testing.TB, m *Model) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustUnmarshal(t testing.TB, b []byte) *Model {
	t.Helper()
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// negZero32 is float32 -0. (The literal -0.0 is +0 in Go: constant
// arithmetic has no signed zero.)
var negZero32 = float32(math.Copysign(0, -1))
