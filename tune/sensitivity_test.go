package tune

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/testenv"
)

// TestSensitivityMatchesIndependentRun checks the per-layer rows against an
// independent path: the same layer quantized alone through convert (every
// other Linear kept float with --keep, the rest fp32) and export to disk,
// run one sample at a time, with the metrics computed here in float64. The
// graphs hold the same codes and fp32 weights, and ORT's CPU kernels on one
// thread give the same logits whatever the batch, so the figures agree to
// float64 summation rounding; 1e-9 absolute leaves room for that (means of
// 60 values of order 1e-3 (KL) to 1 (cosine)) and nothing else.
func TestSensitivityMatchesIndependentRun(t *testing.T) {
	requireORT(t)
	model, calib := trained(t)
	ctx := context.Background()
	r, err := Sensitivity(ctx, SensitivityOptions{Src: model, Precision: convert.Int4, Images: calib, Samples: testSamples,
		LeaveOneOut: true, Open: openBytes})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != 18 || r.Samples != testSamples || !r.Labelled {
		t.Fatalf("%d layers over %d samples (labelled %v); want vit-28's 18 Linear layers over %d labelled", len(r.Layers), r.Samples, r.Labelled, testSamples)
	}
	in, err := LoadInputs(ctx, model, calib, testSamples)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fp32 := filepath.Join(dir, "fp32")
	if _, err := convert.Export(ctx, model, fp32, convert.ExportOptions{Precision: convert.ExportFP32}); err != nil {
		t.Fatal(err)
	}
	base, dim := logitsOf(t, filepath.Join(fp32, "model.onnx"), in)
	// The FP32 top-1 as the report gives it.
	ref := reference(base, base, dim, in.Labels)
	if r.BaselineTop1 == nil || math.Abs(*r.BaselineTop1-ref.top1) > 1e-12 {
		t.Fatalf("baseline top-1 %v, independent %v", r.BaselineTop1, ref.top1)
	}
	names := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		names[i] = l.Name
	}
	// The first value layer (most sensitive on the calibration set) and the
	// last layer (least), so both ends of the table are checked.
	for _, i := range []int{2, 17} {
		keep := append(append([]string{}, names[:i]...), names[i+1:]...)
		out := filepath.Join(dir, names[i])
		_, err := convert.Export(ctx, model, out, convert.ExportOptions{Precision: convert.ExportInt4,
			Convert: convert.Options{Keep: keep, RestDType: "fp32"}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := logitsOf(t, filepath.Join(out, "model.onnx"), in)
		want := reference(base, got, dim, in.Labels)
		m := r.Layers[i].Alone
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"KL", m.KLMean, want.kl}, {"cosine", m.CosineMean, want.cos}, {"top-1 agreement", m.Top1Agreement, want.agree}, {"top-1", *m.Top1, want.top1}} {
			if math.Abs(c.got-c.want) > 1e-9 {
				t.Errorf("layer %d %s: %s %.12g, independent %.12g", i, names[i], c.what, c.got, c.want)
			}
		}
		if want.kl <= 0 || want.cos >= 1 {
			t.Errorf("layer %d: int4 changed nothing (KL %g, cosine %g): the check would not catch a mix-up", i, want.kl, want.cos)
		}
	}
	// Leave-one-out moves toward FP32: every "all but" row has a KL no
	// larger than all quantized plus rounding, and the table's order is the
	// network's.
	for i, l := range r.Layers {
		if l.AllBut == nil || l.AllBut.KLMean > r.AllQuantized.KLMean*1.5+1e-6 {
			t.Errorf("layer %d: all-but KL %v vs all quantized %g", i, l.AllBut, r.AllQuantized.KLMean)
		}
		if l.Index != i || !strings.HasPrefix(l.Name, "vit.encoder.layer.") {
			t.Errorf("row %d is %d %s", i, l.Index, l.Name)
		}
	}
	if !strings.Contains(names[0], "layer.0.attention.attention.query") || !strings.Contains(names[17], "layer.2.output.dense") {
		t.Errorf("not in network order: first %s, last %s", names[0], names[17])
	}

	// The report files: JSON round-trips, CSV has a row per layer, the PNG
	// decodes.
	rep := filepath.Join(dir, "report")
	if err := WriteSensitivity(rep, r); err != nil {
		t.Fatal(err)
	}
	var back SensitivityReport
	b, _ := os.ReadFile(filepath.Join(rep, FileJSON))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Layers) != 18 || back.Layers[2].Alone.KLMean != r.Layers[2].Alone.KLMean {
		t.Errorf("sensitivity.json: %v", err)
	}
	f, _ := os.Open(filepath.Join(rep, FileCSV))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 19 {
		t.Errorf("sensitivity.csv: %d rows, %v", len(rows), err)
	}
	f, _ = os.Open(filepath.Join(rep, FilePNG))
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("sensitivity.png: %v", err)
	}
}

// TestReuseMatchesWholeRuns: starting a variant from the stored FP32
// activation at its cut gives the figures of running it whole, on
// MobileViT (convolutions, stages whose bottlenecks are feature maps) where
// the cut graphs differ most from the whole ones. ONNX Runtime may fuse
// nodes across a cut in the whole graph only (Conv with its activation),
// which can move logits in the last float32 bit; 1e-9 on means of order
// 1e-6..1 (KL, cosine) absorbs that and nothing more.
func TestReuseMatchesWholeRuns(t *testing.T) {
	requireORT(t)
	root := testenv.Fixtures(t, "trained")
	opt := SensitivityOptions{Src: filepath.Join(root, "mobilevit-dev"), Precision: convert.Int4,
		Images: filepath.Join(root, "calib"), Samples: 10, Open: openBytes}
	with, err := Sensitivity(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.NoReuse = true
	without, err := Sensitivity(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if with.Timing.Reused < len(with.Layers)/2 || without.Timing.Reused != 0 {
		t.Fatalf("reused %d of %d runs (without: %d)", with.Timing.Reused, len(with.Layers), without.Timing.Reused)
	}
	for i, l := range with.Layers {
		a, b := l.Alone, without.Layers[i].Alone
		if math.Abs(a.KLMean-b.KLMean) > 1e-9 || math.Abs(a.CosineMean-b.CosineMean) > 1e-9 || a.Top1Agreement != b.Top1Agreement {
			t.Errorf("layer %d %s: reused %+v, whole %+v", i, l.Name, a, b)
		}
	}
}
