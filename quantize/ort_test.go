package quantize

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// TestORTRunsTinyQDQ runs the quantized tiny graph in ONNX Runtime (which
// fuses the QDQ MatMul into MatMulIntegerToFloat and the Gemm into
// QGemm where it can) and compares it with the float64 interpreter's value
// of the same QDQ graph.
func TestORTRunsTinyQDQ(t *testing.T) {
	initORT(t)
	for _, at := range []QType{Uint8, Int8} {
		m := tinySingle(5)
		p, err := NewPlan(m, Options{ActivationType: at})
		if err != nil {
			t.Fatal(err)
		}
		in := tinyInputs(4, 16)[:1]
		stats, err := Collect(context.Background(), m, "", p.Tensors, ortOpen, &sliceSource{batches: [][]verify.Tensor{in}})
		if err != nil {
			t.Fatal(err)
		}
		acts := map[string]Params{}
		for _, name := range p.Tensors {
			lo, hi := stats[name].Range(MinMax, 0)
			acts[name] = ActivationParams(lo, hi, at)
		}
		if _, err := Apply(m, p, acts, at); err != nil {
			t.Fatal(err)
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, err := ortOpen(b, "")
		if err != nil {
			t.Fatalf("%s: ONNX Runtime refuses the QDQ graph: %v", at, err)
		}
		outs, err := r.Run(context.Background(), in)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := eval64(m.Graph, map[string]tensor64{"x": to64(in[0])})["logits"]
		got := outs[0].F32
		for i := range want.v {
			// ORT computes in float32 (int32 accumulation, then float
			// scales): 1e-4 relative to the logit scale covers that; a
			// wrong zero point or axis is off by whole steps (≥ 1e-2).
			if !closeTo(float64(got[i]), want.v[i], 1e-4*(1+math.Abs(want.v[i]))) {
				t.Fatalf("%s: logits[%d] ORT %v, float64 QDQ reference %v", at, i, got[i], want.v[i])
			}
		}
	}
}

// TestFixtureDeterministic quantizes the trained vit-28 fixture twice,
// calibrating on 24 images of trained/calib with ONNX Runtime at 1 and at
// 2 intra-op threads: the outputs must be the same bytes.
func TestFixtureDeterministic(t *testing.T) {
	initORT(t)
	root := testenv.Fixtures(t, "trained")
	src := filepath.Join(t.TempDir(), "fp32")
	if _, err := convert.Export(context.Background(), filepath.Join(root, "vit-28"), src, convert.ExportOptions{Precision: convert.ExportFP32}); err != nil {
		t.Fatal(err)
	}
	var files [2][2][]byte
	for i, threads := range []int{1, 2} {
		open := func(model []byte, dir string) (verify.Runner, error) {
			s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: threads, ExternalDataDir: dir})
			if err != nil {
				return nil, err
			}
			return s, nil
		}
		out := filepath.Join(t.TempDir(), "q")
		mf, err := Run(context.Background(), src, out, Config{CalibImages: filepath.Join(root, "calib"), Samples: 24, Batch: 8 - 3*i}, open)
		if err != nil {
			t.Fatal(err)
		}
		if mf.Calibration.Count != 24 || mf.QuantizedNodes["MatMul"] == 0 {
			t.Fatalf("calibration %+v, quantized %v", mf.Calibration, mf.QuantizedNodes)
		}
		for j, name := range []string{ModelFile, ModelFile + ".data"} {
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			files[i][j] = b
		}
		// The artifact loads and runs.
		s, err := ort.Open(filepath.Join(out, ModelFile), ort.Options{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for j := range 2 {
		if !bytes.Equal(files[0][j], files[1][j]) {
			t.Errorf("file %d differs between 1 and 2 threads (and batch sizes 8 and 5)", j)
		}
	}
}
