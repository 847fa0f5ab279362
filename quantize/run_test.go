package quantize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// tinySingle is tinyModel with y as a constant: one input x[N,4].
func tinySingle(seed uint64) *onnx.Model {
	m := tinyModel(seed)
	g := m.Graph
	g.Inputs = g.Inputs[:1]
	r := rand.New(rand.NewPCG(seed, 13))
	g.Initializers = append(g.Initializers, onnx.TensorF32("y", []int64{6, 3}, randF32(r, 18, 1)))
	return m
}

func writeModel(t *testing.T, m *onnx.Model) string {
	t.Helper()
	dir := t.TempDir()
	if err := onnx.WriteFile(filepath.Join(dir, ModelFile), m, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeNpy(t *testing.T, v any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "calib.npy")
	var b bytes.Buffer
	if err := npyio.Write(&b, v); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func xSamples(n int) [][4]float32 {
	r := rand.New(rand.NewPCG(21, 22))
	out := make([][4]float32, n)
	for i := range out {
		for j := range 4 {
			out[i][j] = float32(r.NormFloat64())
		}
	}
	return out
}

func TestRunNpyArtifact(t *testing.T) {
	src := writeModel(t, tinySingle(4))
	data := writeNpy(t, xSamples(20))
	var outs [2][]byte
	var mf *Manifest
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "q")
		cfg := Config{CalibData: []string{data}, Samples: 13, Batch: 4 + i} // batch size must not change the bytes
		var err error
		mf, err = Run(context.Background(), src, out, cfg, evalOpen(""))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = b
		m, err := onnx.ReadFile(filepath.Join(out, ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		checkTopological(t, m.Graph)
		var back Manifest
		jb, _ := os.ReadFile(filepath.Join(out, "quantpack.json"))
		if err := json.Unmarshal(jb, &back); err != nil || back.Format != Format {
			t.Fatalf("quantpack.json: %v %q", err, back.Format)
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("model bytes depend on the calibration batch size")
	}
	c := mf.Calibration
	if c.Kind != "npy" || c.Count != 13 || len(c.SHA256) != 64 {
		t.Errorf("calibration %+v", c)
	}
	if len(mf.Activations) != 3 || len(mf.Weights) != 3 || mf.Method != Percentile {
		t.Errorf("%d activations, %d weights, method %s", len(mf.Activations), len(mf.Weights), mf.Method)
	}
	for _, a := range mf.Activations {
		if a.Scale <= 0 || a.Count == 0 || len(a.Consumers) == 0 {
			t.Errorf("activation record %+v", a)
		}
	}
	if len(mf.Float) != 1 || mf.Float[0].OpType != "Softmax" {
		t.Errorf("float nodes %+v", mf.Float)
	}
}

func TestRunBadInputs(t *testing.T) {
	good := writeModel(t, tinySingle(4))
	data := writeNpy(t, xSamples(8))
	ctx := context.Background()
	check := func(name string, err error, class fault.Class, out string, sentinel error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if got := fault.ClassOf(err); got != class {
			t.Errorf("%s: class %v, want %v (%v)", name, got, class, err)
		}
		if sentinel != nil && !errors.Is(err, sentinel) {
			t.Errorf("%s: %v is not %v", name, err, sentinel)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%s: %s written", name, out)
		}
		ents, _ := os.ReadDir(filepath.Dir(out))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("%s: temporary %s left behind", name, e.Name())
			}
		}
	}
	t.Run("truncated onnx", func(t *testing.T) {
		b, _ := os.ReadFile(filepath.Join(good, ModelFile))
		dir := t.TempDir()
		p := filepath.Join(dir, "cut.onnx")
		os.WriteFile(p, b[:len(b)/2], 0o644)
		out := filepath.Join(t.TempDir(), "q")
		_, err := Run(ctx, p, out, Config{CalibData: []string{data}}, evalOpen(""))
		check("truncated", err, fault.Invalid, out, nil)
		var fe *onnx.FormatError
		if !errors.As(err, &fe) || fe.Offset < 0 {
			t.Errorf("no byte offset: %v", err)
		}
	})
	t.Run("nothing to quantize", func(t *testing.T) {
		g := &onnx.Graph{Inputs: []*onnx.ValueInfo{onnx.TensorValue("a", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(4))}}
		g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("c", onnx.Float)}
		g.AddNode("Relu", []string{"a"}, []string{"b"})
		g.AddNode("Softmax", []string{"b"}, []string{"c"})
		src := writeModel(t, &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 17)}, Graph: g})
		out := filepath.Join(t.TempDir(), "q")
		_, err := Run(ctx, src, out, Config{CalibData: []string{data}}, evalOpen(""))
		check("nothing", err, fault.Unsupported, out, ErrNothingToQuantize)
		if !containsAll(err.Error(), "Relu×1", "Softmax×1") {
			t.Errorf("op types not listed: %v", err)
		}
	})
	t.Run("calibration shape", func(t *testing.T) {
		bad := writeNpy(t, [][5]float32{{1, 2, 3, 4, 5}})
		out := filepath.Join(t.TempDir(), "q")
		_, err := Run(ctx, good, out, Config{CalibData: []string{bad}}, evalOpen(""))
		check("shape", err, fault.Usage, out, ErrCalibData)
		if !containsAll(err.Error(), `"x"`, "[-1 4]", "[1 5]") {
			t.Errorf("message does not name input, expected and got: %v", err)
		}
	})
	t.Run("calibration dtype", func(t *testing.T) {
		bad := writeNpy(t, [][4]float64{{1, 2, 3, 4}})
		out := filepath.Join(t.TempDir(), "q")
		_, err := Run(ctx, good, out, Config{CalibData: []string{bad}}, evalOpen(""))
		check("dtype", err, fault.Usage, out, ErrCalibData)
		if !containsAll(err.Error(), `"x"`, "<f8", "<f4") {
			t.Errorf("message does not name input, expected and got: %v", err)
		}
	})
	t.Run("unknown input name", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "q")
		_, err := Run(ctx, good, out, Config{CalibData: []string{"pixels=" + data}}, evalOpen(""))
		check("name", err, fault.Usage, out, ErrCalibData)
	})
	t.Run("nan activation", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "q")
		mf, err := Run(ctx, good, out, Config{CalibData: []string{data}}, evalOpen("p"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range mf.Float {
			if f.Node == "head" && strings.Contains(f.Reason, "NaN/Inf") && strings.Contains(f.Reason, `"p"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("head not left float for the NaN in p: %+v", mf.Float)
		}
		for _, a := range mf.Activations {
			if a.Tensor == "p" {
				t.Error("p still quantized")
			}
		}
	})
	t.Run("existing output", func(t *testing.T) {
		out := t.TempDir()
		os.WriteFile(filepath.Join(out, "keep"), nil, 0o644)
		_, err := Run(ctx, good, out, Config{CalibData: []string{data}}, evalOpen(""))
		if fault.ClassOf(err) != fault.Usage {
			t.Errorf("non-empty -o: %v", err)
		}
	})
}

// imageModel takes pixel_values [N,3,4,4] into a MatMul over the width.
func imageModel() *onnx.Model {
	g := &onnx.Graph{Name: "img"}
	g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("pixel_values", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(3), onnx.Fixed(4), onnx.Fixed(4))}
	g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("out", onnx.Float)}
	g.Initializers = []*onnx.Tensor{onnx.TensorF32("W", []int64{4, 2}, []float32{1, -1, 0.5, 2, -0.25, 1, 3, 0})}
	g.AddNode("MatMul", []string{"pixel_values", "W"}, []string{"out"}).Name = "proj"
	return &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 17)}, Graph: g}
}

const tinyPreprocessor = `{"image_processor_type": "ViTImageProcessor", "do_resize": true, "size": {"height": 4, "width": 4},
"resample": 2, "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}`

func TestRunImages(t *testing.T) {
	src := writeModel(t, imageModel())
	pre := filepath.Join(t.TempDir(), "preprocessor_config.json")
	os.WriteFile(pre, []byte(tinyPreprocessor), 0o644)
	imgs := t.TempDir()
	for i, c := range []color.RGBA{{0, 0, 0, 255}, {255, 255, 255, 255}, {64, 128, 192, 255}} {
		img := image.NewRGBA(image.Rect(0, 0, 8, 8))
		for p := range 64 {
			img.Set(p%8, p/8, c)
		}
		var b bytes.Buffer
		png.Encode(&b, img)
		os.WriteFile(filepath.Join(imgs, string(rune('a'+i))+".png"), b.Bytes(), 0o644)
	}
	os.WriteFile(filepath.Join(imgs, "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	out := filepath.Join(t.TempDir(), "q")
	mf, err := Run(context.Background(), src, out, Config{CalibImages: imgs, Preprocessor: pre, Method: MinMax}, evalOpen(""))
	if err != nil {
		t.Fatal(err)
	}
	c := mf.Calibration
	if c.Kind != "images" || c.Count != 3 || c.Skipped != 1 || !strings.HasSuffix(c.SkippedFiles[0], "broken.png") {
		t.Errorf("calibration %+v", c)
	}
	// verify's preprocessing maps black to -1 and white to +1: the
	// calibrated range of the input is exactly that.
	a := mf.Activations[0]
	if a.Tensor != "pixel_values" || a.Min != -1 || a.Max != 1 {
		t.Errorf("pixel_values range [%v, %v], want [-1, 1] from verify's preprocessing", a.Min, a.Max)
	}
	if _, err := os.Stat(filepath.Join(out, "preprocessor_config.json")); err != nil {
		t.Errorf("--preprocessor not copied beside the graph: %v", err)
	}
	// A bare .onnx without a preprocessor: --calib-images cannot work.
	_, err = Run(context.Background(), filepath.Join(src, ModelFile), filepath.Join(t.TempDir(), "q"), Config{CalibImages: imgs}, evalOpen(""))
	if err == nil {
		t.Error("no preprocessor: no error")
	}
}

var _ verify.Runner = (*evalRunner)(nil)

// TestReportFP16Risk: an input with |x| > 65504 is an FP16 overflow risk,
// one whose values are mostly below 2^-25 an underflow risk; the report's
// three files are written.
func TestReportFP16Risk(t *testing.T) {
	src := writeModel(t, tinySingle(4))
	x := xSamples(6)
	x[2][1] = 1e5
	for i := 3; i < 6; i++ {
		x[i] = [4]float32{1e-9, -2e-9, 3e-9, 1e-10}
	}
	data := writeNpy(t, x)
	rep := filepath.Join(t.TempDir(), "rep")
	mf, err := Run(context.Background(), src, filepath.Join(t.TempDir(), "q"), Config{CalibData: []string{data}, Report: rep}, evalOpen(""))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	b, err := os.ReadFile(filepath.Join(rep, ReportJSON))
	if err != nil || json.Unmarshal(b, &r) != nil {
		t.Fatalf("report json: %v", err)
	}
	if r.FP16Safe || len(r.Tensors) != len(mf.Activations) {
		t.Fatalf("fp16 safe %v, %d tensors", r.FP16Safe, len(r.Tensors))
	}
	xr := r.Tensors[0]
	if xr.Tensor != "x" || xr.FP16.Risk != FP16Overflow || xr.FP16.Overflow != 1 || xr.FP16.Flushed != 12 {
		t.Errorf("x: %+v", xr.FP16)
	}
	for _, f := range []string{ReportMarkdown, ReportPNG} {
		if st, err := os.Stat(filepath.Join(rep, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	s := NewStats()
	s.Add([]float32{1e-9, 1e-9, 1e-9, 1})
	rr := NewReport(&Manifest{}, []string{"t"}, map[string]*Stats{"t": s})
	if rr.Tensors[0].FP16.Risk != FP16Underflow {
		t.Errorf("75%% of values flushed: risk %q", rr.Tensors[0].FP16.Risk)
	}
}
