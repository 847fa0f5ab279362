package quantize

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// ocrPreprocessor resizes to 320×320 and normalises with ImageNet's mean
// and std, as PaddleOCR's detector expects (320 is a multiple of its
// stride 32).
const ocrPreprocessor = `{"image_processor_type": "ViTImageProcessor", "do_resize": true, "size": {"height": 320, "width": 320},
"resample": 2, "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}`

// TestThirdPartyOCR quantizes a real model nobody here wrote — the
// PP-OCRv4 text detector (Paddle2ONNX, opset 11, weights as Constant
// nodes, dynamic H×W), fetched by `make ocr-models` — calibrating on
// trained/calib, and compares it with FP32 in ONNX Runtime on
// trained/images (disjoint from calibration): the output maps' cosine.
// Skipped when the model has not been fetched.
func TestThirdPartyOCR(t *testing.T) {
	det := filepath.Join("..", "third_party", "ocr-models", "ch_PP-OCRv4_det_infer.onnx")
	if _, err := os.Stat(det); err != nil {
		t.Skip("third-party model absent: run `make ocr-models`")
	}
	initORT(t)
	root := testenv.Fixtures(t, "trained")
	pre := filepath.Join(t.TempDir(), "preprocessor_config.json")
	if err := os.WriteFile(pre, []byte(ocrPreprocessor), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "q")
	const n = 16
	mf, err := Run(context.Background(), det, out, Config{CalibImages: filepath.Join(root, "calib"), Preprocessor: pre, Samples: n}, ortOpen)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quantized %v, %d left float, size ratio %.3f", mf.QuantizedNodes, len(mf.Float), mf.Sizes.Ratio)
	opt := ort.Options{IntraOpThreads: 1}
	base, err := ort.Open(det, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	cand, err := ort.Open(filepath.Join(out, ModelFile), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer cand.Close()
	p, err := verify.NewPreprocessor(mustPre(t, pre))
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewImageSource(filepath.Join(root, "images"), p, base.Inputs()[0], n, 1)
	if err != nil {
		t.Fatal(err)
	}
	minCos, sum, count := math.Inf(1), 0.0, 0
	for {
		in, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a, err := base.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := cand.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		c := verify.Cosine(a[0].F32, b[0].F32)
		minCos, sum, count = math.Min(minCos, c), sum+c, count+1
	}
	t.Logf("PP-OCRv4 det static INT8 vs FP32 on %d test images: cosine mean %.4f, min %.4f", count, sum/float64(count), minCos)
	// A regression guard at the level measured when this was written
	// (mean 0.70 with 16 calibration images, docs/quantize.md); the
	// issue's target of 0.99 is NOT met by this model: its probability map
	// passes a sigmoid that turns small logit errors into large ones, and
	// which layers to leave float is the sensitivity issue's question.
	if sum/float64(count) < 0.6 {
		t.Errorf("cosine mean %.4f < 0.6", sum/float64(count))
	}
}

func mustPre(t *testing.T, path string) verify.PreprocessorConfig {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify.ParsePreprocessorConfig(path, b, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
