package quantize_test

// An external test package: it exports the fixture with convert, which
// imports quantize (awq's calibration), so an internal test could not.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func initORTExt(t testing.TB) {
	t.Helper()
	lib, err := ort.LibraryPath("")
	if err == nil {
		err = ort.Init(lib)
	}
	if err != nil {
		testenv.SkipOrFail(t, "ONNX Runtime not available: %v", err)
	}
}

// TestFixtureDeterministic quantizes the trained vit-28 fixture twice,
// calibrating on 24 images of trained/calib with ONNX Runtime at 1 and at
// 2 intra-op threads: the outputs must be the same bytes.
func TestFixtureDeterministic(t *testing.T) {
	initORTExt(t)
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
		mf, err := quantize.Run(context.Background(), src, out, quantize.Config{CalibImages: filepath.Join(root, "calib"), Samples: 24, Batch: 8 - 3*i}, open)
		if err != nil {
			t.Fatal(err)
		}
		if mf.Calibration.Count != 24 || mf.QuantizedNodes["MatMul"] == 0 {
			t.Fatalf("calibration %+v, quantized %v", mf.Calibration, mf.QuantizedNodes)
		}
		for j, name := range []string{quantize.ModelFile, quantize.ModelFile + ".data"} {
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			files[i][j] = b
		}
		// The artifact loads and runs.
		s, err := ort.Open(filepath.Join(out, quantize.ModelFile), ort.Options{IntraOpThreads: 1})
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
