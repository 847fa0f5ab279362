//go:build cgo

package ort

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// needORT loads ONNX Runtime or skips; under QUANTPACK_CI=1 it fails
// instead, so CI cannot pass without running these tests.
func needORT(t testing.TB) {
	t.Helper()
	path, err := LibraryPath("")
	if err == nil {
		err = Init(path)
	}
	if err != nil {
		testenv.SkipOrFail(t, "ONNX Runtime not available (run `make ort`): %v", err)
	}
}

func openBytes(t testing.TB, m []byte, opt Options) *Session {
	t.Helper()
	s, err := OpenBytes(m, opt)
	if err != nil {
		t.Fatalf("OpenBytes: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func input(batch, k int, seed float64) []float32 {
	x := make([]float32, batch*k)
	for i := range x {
		x[i] = float32(math.Cos(float64(i)*1.3+seed)) * 2
	}
	return x
}

// checkLinear compares Y and label with the float64 reference. Tolerance:
// ONNX Runtime accumulates k=5 float32 products of magnitude ≤ 2, so the
// error is within a few ulps of 2 (≈ 1e-6); 1e-5 leaves room for a fused
// or reordered sum.
func checkLinear(t *testing.T, l linear, x []float32, batch int, out []verify.Tensor) {
	t.Helper()
	y, label := l.reference(x, batch)
	if len(out) != 2 || out[0].Name != "Y" || out[1].Name != "label" {
		t.Fatalf("outputs = %+v", out)
	}
	if got := out[0].Shape; len(got) != 2 || got[0] != int64(batch) || got[1] != int64(l.n) {
		t.Fatalf("Y shape %v, want [%d %d]", got, batch, l.n)
	}
	if len(out[0].F32) != batch*l.n {
		t.Fatalf("Y has %d values, want %d", len(out[0].F32), batch*l.n)
	}
	for i, v := range out[0].F32 {
		if math.Abs(float64(v)-y[i]) > 1e-5 {
			t.Fatalf("Y[%d] = %v, float64 reference %v", i, v, y[i])
		}
	}
	if out[1].DType != verify.Int64 || len(out[1].I64) != batch {
		t.Fatalf("label = %+v", out[1])
	}
	for i, v := range out[1].I64 {
		if v != label[i] {
			t.Fatalf("label[%d] = %d, want %d", i, v, label[i])
		}
	}
}

func TestLinearDynamicBatch(t *testing.T) {
	needORT(t)
	l := newLinear(5, 3)
	s := openBytes(t, l.model("", "batch", 3), Options{IntraOpThreads: 1})
	in := s.Inputs()
	if len(in) != 1 || in[0].Name != "X" || in[0].DType != verify.Float32 || in[0].Shape[0] != -1 || in[0].Shape[1] != 5 {
		t.Fatalf("inputs = %+v", in)
	}
	out := s.Outputs()
	if len(out) != 2 || out[1].DType != verify.Int64 {
		t.Fatalf("outputs = %+v", out)
	}
	// Same shape twice (reused tensors must carry the new data), then
	// other batch sizes, then the first again.
	for i, batch := range []int{1, 1, 3, 7, 1, 2, 4, 5, 3} {
		x := input(batch, 5, float64(i))
		res, err := s.Run(context.Background(), []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{int64(batch), 5}, F32: x}})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		checkLinear(t, l, x, batch, res)
	}
	if len(s.plans) > maxPlans {
		t.Fatalf("%d plans cached, limit %d", len(s.plans), maxPlans)
	}
}

// Output shapes the model leaves out are inferred by ONNX Runtime (and
// then pre-allocated); a symbol no input has leaves Y to ONNX Runtime.
func TestUndeclaredOutputShape(t *testing.T) {
	needORT(t)
	l := newLinear(5, 3)
	for name, tc := range map[string]struct {
		m        []byte
		prealloc bool
	}{
		"no shape":         {l.model(""), true},
		"unnamed dims":     {l.model("", nil, nil), true},
		"unrelated symbol": {l.model("", "rows", 3), false},
	} {
		t.Run(name, func(t *testing.T) {
			s := openBytes(t, tc.m, Options{})
			x := input(4, 5, 0)
			res, err := s.Run(context.Background(), []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{4, 5}, F32: x}})
			if err != nil {
				t.Fatal(err)
			}
			checkLinear(t, l, x, 4, res)
			if got := s.plans[0].out[0] != nil; got != tc.prealloc {
				t.Fatalf("Y pre-allocated: %v, want %v", got, tc.prealloc)
			}
		})
	}
}

// Outputs whose shape depends on data are allocated by ONNX Runtime and
// copied out in full, float16 included (the case onnxruntime_go copies
// short).
func TestDataDependentOutputShape(t *testing.T) {
	needORT(t)
	x := input(12, 1, 0)
	for _, to := range []int64{tFloat, tFloat16} {
		s := openBytes(t, reshapeModel(to), Options{})
		for _, shape := range [][]int64{{3, 4}, {2, 6}, {12, 1}} {
			res, err := s.Run(context.Background(), []verify.Tensor{
				{Name: "X", DType: verify.Float32, Shape: []int64{12}, F32: x},
				{Name: "S", DType: verify.Int64, Shape: []int64{2}, I64: shape},
			})
			if err != nil {
				t.Fatal(err)
			}
			y := res[0]
			if !slices.Equal(y.Shape, shape) {
				t.Fatalf("type %d: Y shape %v, want %v", to, y.Shape, shape)
			}
			if s.plans[0].out[0] != nil {
				t.Fatalf("type %d: Y was pre-allocated", to)
			}
			for i, v := range x {
				switch to {
				case tFloat:
					if y.F32[i] != v || len(y.F32) != 12 {
						t.Fatalf("Y = %v, want %v", y.F32, x)
					}
				case tFloat16:
					if len(y.U16) != 12 || y.U16[i] != floatToHalfRef(v) {
						t.Fatalf("Y[%d] = %#04x of %d values, want %#04x of 12", i, y.U16[i], len(y.U16), floatToHalfRef(v))
					}
				}
			}
		}
	}
}

// A model that declares Y as [batch, 5] although Concat makes it
// [2·batch, 5]: the pre-allocated guess is refused and Run retries with
// ONNX Runtime allocating.
func TestWrongDeclaredShapeRetries(t *testing.T) {
	needORT(t)
	m := model(graphSpec{
		nodes:   [][]byte{node("Concat", "cat", []string{"X", "X"}, []string{"Y"}, attrInt("axis", 0))},
		inputs:  [][]byte{valueInfo("X", tFloat, "batch", 5)},
		outputs: [][]byte{valueInfo("Y", tFloat, "batch", 5)},
	})
	s := openBytes(t, m, Options{})
	x := input(2, 5, 0)
	for i := 0; i < 2; i++ {
		res, err := s.Run(context.Background(), []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{2, 5}, F32: x}})
		if err != nil {
			t.Fatal(err)
		}
		y := res[0]
		if y.Shape[0] != 4 || len(y.F32) != 20 {
			t.Fatalf("Y shape %v with %d values, want [4 5]", y.Shape, len(y.F32))
		}
		for j := range y.F32 {
			if y.F32[j] != x[j%10] {
				t.Fatalf("Y[%d] = %v, want %v", j, y.F32[j], x[j%10])
			}
		}
	}
}

func TestInt64Input(t *testing.T) {
	needORT(t)
	s := openBytes(t, scaleModel(), Options{})
	in := []int64{-4, 0, 7, math.MaxInt64 / 5}
	res, err := s.Run(context.Background(), []verify.Tensor{{Name: "I", DType: verify.Int64, Shape: []int64{4}, I64: in}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range res[0].I64 {
		if v != in[i]*3 {
			t.Fatalf("O[%d] = %d, want %d", i, v, in[i]*3)
		}
	}
}

// float16 in both directions, against an exhaustive-search rounding
// reference: bit-exact, since Cast rounds to nearest even.
func TestFloat16(t *testing.T) {
	needORT(t)
	x := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 65504, 65519, 65520, 1e6, -1e6,
		5.96e-8, 2.98e-8, 1e-9, 1.00048828125, 1.000732421875, 3.14159, -2.71828, 6.1e-5}
	for len(x)%4 != 0 {
		x = append(x, float32(len(x))*0.37)
	}
	batch := len(x) / 4
	h := make([]uint16, len(x))
	for i := range h {
		h[i] = uint16(i*2731 + 17) // spans normals, subnormals, both signs
		if h[i]&0x7C00 == 0x7C00 {
			h[i] &^= 0x4000 // keep away from Inf/NaN
		}
	}
	for name, m := range map[string][]byte{
		"declared": castModel("batch", 4),
		"unknown":  castModel(), // ONNX Runtime allocates the float16 output
	} {
		t.Run(name, func(t *testing.T) {
			s := openBytes(t, m, Options{})
			res, err := s.Run(context.Background(), []verify.Tensor{
				{Name: "H", DType: verify.Float16, Shape: []int64{int64(batch), 4}, U16: h},
				{Name: "X", DType: verify.Float32, Shape: []int64{int64(batch), 4}, F32: x},
			})
			if err != nil {
				t.Fatal(err)
			}
			half, full := res[0], res[1]
			if half.DType != verify.Float16 || len(half.U16) != len(x) {
				t.Fatalf("half: %s with %d values, want float16 with %d", half.DType, len(half.U16), len(x))
			}
			for i, v := range x {
				if want := floatToHalfRef(v); half.U16[i] != want {
					t.Errorf("half(%g) = %#04x, want %#04x", v, half.U16[i], want)
				}
			}
			for i, v := range h {
				if want := halfToFloat64(v); float64(full.F32[i]) != want {
					t.Errorf("float(%#04x) = %g, want %g", v, full.F32[i], want)
				}
			}
		})
	}
}

func TestExternalData(t *testing.T) {
	needORT(t)
	l := newLinear(6, 4)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx.data"), f32Bytes(l.w), 0o644); err != nil {
		t.Fatal(err)
	}
	m := l.model("model.onnx.data", "batch", 4)
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, m, 0o644); err != nil {
		t.Fatal(err)
	}
	x := input(2, 6, 1)
	run := func(s *Session) {
		t.Helper()
		defer s.Close()
		res, err := s.Run(context.Background(), []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{2, 6}, F32: x}})
		if err != nil {
			t.Fatal(err)
		}
		checkLinear(t, l, x, 2, res)
	}
	// From a path in another working directory: found next to the model.
	t.Chdir(t.TempDir())
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	run(s)
	s, err = OpenBytes(m, Options{ExternalDataDir: dir})
	if err != nil {
		t.Fatalf("OpenBytes with ExternalDataDir: %v", err)
	}
	run(s)
	if _, err := OpenBytes(m, Options{}); !errors.Is(err, ErrModel) {
		t.Fatalf("OpenBytes without ExternalDataDir: %v, want ErrModel", err)
	}
}

func TestOpenErrors(t *testing.T) {
	needORT(t)
	for name, tc := range map[string]struct {
		open func() (*Session, error)
		want error
	}{
		"missing file": {func() (*Session, error) { return Open(filepath.Join(t.TempDir(), "none.onnx"), Options{}) }, ErrModel},
		"not protobuf": {func() (*Session, error) { return OpenBytes([]byte("not a model at all"), Options{}) }, ErrModel},
		"unknown op": {func() (*Session, error) {
			return OpenBytes(model(graphSpec{
				nodes:   [][]byte{node("NoSuchOp", "n", []string{"X"}, []string{"Y"})},
				inputs:  [][]byte{valueInfo("X", tFloat, 2)},
				outputs: [][]byte{valueInfo("Y", tFloat, 2)},
			}), Options{})
		}, ErrModel},
		// A valid graph whose operator has no CPU kernel for the type.
		"no kernel": {func() (*Session, error) {
			const bfloat16 = 16
			return OpenBytes(model(graphSpec{
				nodes:   [][]byte{node("MatMul", "n", []string{"X", "X"}, []string{"Y"})},
				inputs:  [][]byte{valueInfo("X", bfloat16, 2, 2)},
				outputs: [][]byte{valueInfo("Y", bfloat16)},
			}), Options{})
		}, ErrUnsupported},
		"uint8 input": {func() (*Session, error) {
			return OpenBytes(model(graphSpec{
				nodes:   [][]byte{node("Identity", "n", []string{"X"}, []string{"Y"})},
				inputs:  [][]byte{valueInfo("X", 2, 2)},
				outputs: [][]byte{valueInfo("Y", 2, 2)},
			}), Options{})
		}, ErrUnsupported},
		"bad options": {func() (*Session, error) { return OpenBytes(scaleModel(), Options{OptLevel: 3}) }, ErrOptions},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := tc.open()
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Op != "open" && tc.want != ErrOptions {
				t.Fatalf("error %#v does not say where", err)
			}
		})
	}
}

func TestRunInputErrors(t *testing.T) {
	needORT(t)
	s := openBytes(t, castModel("batch", 4), Options{})
	good := func() []verify.Tensor {
		return []verify.Tensor{
			{Name: "X", DType: verify.Float32, Shape: []int64{1, 4}, F32: make([]float32, 4)},
			{Name: "H", DType: verify.Float16, Shape: []int64{1, 4}, U16: make([]uint16, 4)},
		}
	}
	if _, err := s.Run(context.Background(), good()); err != nil {
		t.Fatalf("good inputs: %v", err)
	}
	for name, mutate := range map[string]func([]verify.Tensor) []verify.Tensor{
		"missing":   func(in []verify.Tensor) []verify.Tensor { return in[:1] },
		"extra":     func(in []verify.Tensor) []verify.Tensor { return append(in, in[0]) },
		"unknown":   func(in []verify.Tensor) []verify.Tensor { in[0].Name = "Z"; return in },
		"duplicate": func(in []verify.Tensor) []verify.Tensor { in[1] = in[0]; return in },
		"dtype": func(in []verify.Tensor) []verify.Tensor {
			in[1].DType = verify.Float32
			in[1].F32 = make([]float32, 4)
			return in
		},
		"rank":       func(in []verify.Tensor) []verify.Tensor { in[0].Shape = []int64{4}; return in },
		"fixed dim":  func(in []verify.Tensor) []verify.Tensor { in[0].Shape = []int64{2, 2}; return in },
		"zero dim":   func(in []verify.Tensor) []verify.Tensor { in[0].Shape = []int64{0, 4}; return in },
		"short data": func(in []verify.Tensor) []verify.Tensor { in[0].F32 = in[0].F32[:3]; return in },
		"long data":  func(in []verify.Tensor) []verify.Tensor { in[1].U16 = make([]uint16, 5); return in },
		"overflow":   func(in []verify.Tensor) []verify.Tensor { in[0].Shape = []int64{math.MaxInt64 / 2, 4}; return in },
		"batch split": func(in []verify.Tensor) []verify.Tensor {
			in[0].Shape = []int64{2, 4}
			in[0].F32 = make([]float32, 8)
			return in
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Run(context.Background(), mutate(good()))
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error %v, want ErrInput", err)
			}
			if fault.ClassOf(err) != fault.Invalid {
				t.Fatalf("class %v", fault.ClassOf(err))
			}
		})
	}
	// The session still works.
	if _, err := s.Run(context.Background(), good()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Run(context.Background(), good()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// A single unnamed tensor is taken for a single-input model.
func TestUnnamedSingleInput(t *testing.T) {
	needORT(t)
	s := openBytes(t, scaleModel(), Options{})
	res, err := s.Run(context.Background(), []verify.Tensor{{DType: verify.Int64, Shape: []int64{1}, I64: []int64{5}}})
	if err != nil || res[0].I64[0] != 15 {
		t.Fatalf("res %v, err %v", res, err)
	}
}

func TestCUDAClassicUnavailableOnCPUBuild(t *testing.T) {
	needORT(t)
	_, err := OpenBytes(scaleModel(), Options{Device: DeviceCUDA})
	if !errors.Is(err, ErrCUDAUnavailable) || fault.ClassOf(err) != fault.Runtime {
		t.Fatalf("error %v (class %v), want ErrCUDAUnavailable (runtime)", err, fault.ClassOf(err))
	}
}

func TestVersion(t *testing.T) {
	needORT(t)
	v := Version()
	if v == "" || v[0] < '1' || v[0] > '9' {
		t.Fatalf("Version() = %q", v)
	}
	t.Logf("ONNX Runtime %s", v)
}

// A model without inputs (a Constant) runs with no tensors.
func TestNoInputs(t *testing.T) {
	needORT(t)
	value := str(varint(nil, 20, 4), 1, "value") // AttributeProto type TENSOR
	value = msg(value, 5, initializer("", tFloat, []int64{2}, f32Bytes([]float32{1.5, -2})))
	s := openBytes(t, model(graphSpec{
		nodes:   [][]byte{node("Constant", "c", nil, []string{"Y"}, value)},
		outputs: [][]byte{valueInfo("Y", tFloat, 2)},
	}), Options{})
	for i := 0; i < 2; i++ {
		res, err := s.Run(context.Background(), nil)
		if err != nil || len(res) != 1 || len(res[0].F32) != 2 || res[0].F32[0] != 1.5 || res[0].F32[1] != -2 {
			t.Fatalf("res %+v, err %v", res, err)
		}
	}
}
