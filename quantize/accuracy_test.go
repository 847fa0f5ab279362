package quantize

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// convGraph is x[1,3,8,8] → Conv(W[4,3,3,3]) → then op (Relu or Softmax)
// at the given opset.
func convGraph(opset int64, op string) *onnx.Model {
	g := &onnx.Graph{Name: "c", Inputs: []*onnx.ValueInfo{onnx.TensorValue("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(3), onnx.Fixed(8), onnx.Fixed(8))},
		Outputs: []*onnx.ValueInfo{onnx.TensorValue("y", onnx.Float)}}
	g.Initializers = []*onnx.Tensor{onnx.TensorF32("W", []int64{4, 3, 3, 3}, make([]float32, 108))}
	g.AddNode("Conv", []string{"x", "W"}, []string{"c"}).Name = "conv"
	g.AddNode(op, []string{"c"}, []string{"y"}).Name = "act"
	return &onnx.Model{IRVersion: 6, Opsets: []*onnx.OpsetID{onnx.Opset("", opset)}, Graph: g}
}

// TestUpgradeOpset: opset 11 and 12 become 13 (IR version 7) only when no
// node changes meaning; the plan is then per channel.
func TestUpgradeOpset(t *testing.T) {
	for _, c := range []struct {
		opset    int64
		op       string
		upgraded bool
		reason   string
	}{
		{11, "Relu", true, ""},
		{12, "Relu", true, ""},
		{11, "Softmax", false, "Softmax may change meaning"}, // 13: one axis instead of a 2-D coercion
		{10, "Relu", false, ""},                              // Resize and Clip changed at 11: not attempted
		{13, "Relu", false, ""},
		{17, "Softmax", false, ""},
	} {
		m := convGraph(c.opset, c.op)
		from, reason := UpgradeOpset(m)
		if (from != 0) != c.upgraded || !strings.Contains(reason, c.reason) {
			t.Errorf("opset %d with %s: upgraded from %d (%q), want upgraded=%v (%q)", c.opset, c.op, from, reason, c.upgraded, c.reason)
		}
		if c.upgraded && (defaultOpset(m) != 13 || m.IRVersion != 7 || from != c.opset) {
			t.Errorf("opset %d: now opset %d IR %d, want 13 and 7", c.opset, defaultOpset(m), m.IRVersion)
		}
		if !c.upgraded && defaultOpset(m) != c.opset {
			t.Errorf("opset %d with %s changed to %d", c.opset, c.op, defaultOpset(m))
		}
		p, err := NewPlan(m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p.PerChannel != (defaultOpset(m) >= 13) {
			t.Errorf("opset %d: per channel %v", defaultOpset(m), p.PerChannel)
		}
	}
	m := convGraph(11, "Relu")
	m.Graph.AddNode("Resize", []string{"y", "", "s"}, []string{"z"}, onnx.AttrString("coordinate_transformation_mode", "tf_half_pixel_for_nn"))
	if from, reason := UpgradeOpset(m); from != 0 || !strings.Contains(reason, "tf_half_pixel_for_nn") {
		t.Errorf("Resize tf_half_pixel_for_nn: upgraded from %d (%q)", from, reason)
	}
}

// TestMinCosine runs the accuracy-aware pass on the tiny graph (three
// quantized nodes: fc1, the MatMul with the constant y, head) in ONNX
// Runtime: a target the full graph meets changes nothing; a target that
// only the best single node meets leaves the other two float, in
// sensitivity order, and says so in the manifest; an unreachable target is
// a gate failure with nothing written.
func TestMinCosine(t *testing.T) {
	initORT(t)
	src := writeModel(t, tinySingle(3))
	run := func(target float64) (*Manifest, string, error) {
		out := filepath.Join(t.TempDir(), "q")
		mf, err := Run(context.Background(), src, out, Config{Samples: 16, Holdout: 8, MinCosine: target, Method: MinMax}, ortOpen)
		return mf, out, err
	}
	mf, _, err := run(1e-9)
	if err != nil {
		t.Fatal(err)
	}
	a := mf.Accuracy
	if a == nil || a.Holdout.Count != 8 || mf.Calibration.Count != 16 || len(a.Excluded) != 0 || len(a.Sensitivity) != 0 || a.Final != a.AllQuantized {
		t.Fatalf("met target: accuracy %+v, calibration %d", a, mf.Calibration.Count)
	}
	all := a.AllQuantized.CosineMean
	if !(all > 0.9 && all < 1) {
		t.Fatalf("all-quantized cosine %v: expected a small but non-zero loss", all)
	}

	// The unreachable target: all but one node float still misses 1.
	_, out, err := run(1)
	if !errors.Is(err, ErrAccuracyTarget) || fault.ClassOf(err) != fault.Gate {
		t.Fatalf("target 1: %v, want ErrAccuracyTarget (exit 5)", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("target 1: output written")
	}

	// Calibration data with nothing after the calibration samples: no
	// held-out samples, a usage error naming the count.
	data := writeNpy(t, xSamples(16))
	_, err = Run(context.Background(), src, filepath.Join(t.TempDir(), "q"), Config{CalibData: []string{data}, Samples: 16, MinCosine: 0.5}, ortOpen)
	if !errors.Is(err, ErrCalibData) || !strings.Contains(err.Error(), "after the 16 used for calibration") {
		t.Errorf("no held-out samples: %v", err)
	}

	// The best single node's cosine, measured directly, as the target.
	m, err := onnx.ReadFile(filepath.Join(src, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Samples: 16, Holdout: 8, Method: MinMax}
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	calib, _, _ := newSource(cfg, m, src)
	stats, err := Collect(context.Background(), m, src, p.Tensors, ortOpen, calib)
	if err != nil {
		t.Fatal(err)
	}
	hc := cfg
	hc.Samples, hc.Batch = 24, 1
	hs, _, _ := newSource(hc, m, src)
	fp32, err := ortOpen(mustMarshalT(t, m), src)
	if err != nil {
		t.Fatal(err)
	}
	held, err := newHeldOut(context.Background(), &skipSource{Source: hs, skip: 16}, fp32, 16)
	fp32.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := &candidate{load: func() (*onnx.Model, error) { return onnx.ReadFile(filepath.Join(src, ModelFile)) },
		cfg: cfg, stats: stats, open: ortOpen, dir: src, held: held}
	alone := map[string]float64{}
	for _, id := range []string{"fc1", "attn_scores", "head"} {
		ag, err := c.measure(context.Background(), nil, id)
		if err != nil {
			t.Fatal(err)
		}
		alone[id] = ag.CosineMean
	}
	ids := []string{"fc1", "attn_scores", "head"}
	slices.SortStableFunc(ids, func(x, y string) int {
		switch {
		case alone[x] < alone[y]:
			return -1
		case alone[x] > alone[y]:
			return 1
		}
		return 0
	})
	best := alone[ids[2]]
	if !(best > all) {
		t.Fatalf("best single node %v not above all quantized %v", best, all)
	}
	// Just below the best node's cosine: excluding the two worst is needed
	// (each alone is below it, so the full graph and the graph with one
	// excluded are too, by the ranking's premise) and enough.
	mf, _, err = run(best - 1e-9)
	if err != nil {
		t.Fatal(err)
	}
	a = mf.Accuracy
	if !slices.Equal(a.Excluded, ids[:2]) || a.Final.CosineMean != best || len(a.Sensitivity) != 3 {
		t.Fatalf("excluded %v (final %v), want %v (%v); sensitivity %+v", a.Excluded, a.Final.CosineMean, ids[:2], best, a.Sensitivity)
	}
	for k, s := range a.Sensitivity {
		if s.Node != ids[k] || s.Cosine != alone[s.Node] {
			t.Errorf("rank %d: %+v, want %s at %v", k+1, s, ids[k], alone[ids[k]])
		}
	}
	if mf.QuantizedNodes["Gemm"]+mf.QuantizedNodes["MatMul"] != 1 {
		t.Errorf("quantized %v, want one node", mf.QuantizedNodes)
	}
	for _, id := range ids[:2] {
		found := false
		for _, f := range mf.Float {
			found = found || f.Node == id && strings.HasPrefix(f.Reason, "--min-cosine") && strings.Contains(f.Reason, "sensitivity rank")
		}
		if !found {
			t.Errorf("%s not in the manifest's float list with its reason: %+v", id, mf.Float)
		}
	}
}

func mustMarshalT(t *testing.T, m *onnx.Model) []byte {
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHoldoutSource: the held-out samples are the ones after the
// calibration samples (disjoint), and their sha256 covers them only, in
// the SHA256SUMS format of the calibration's.
func TestHoldoutSource(t *testing.T) {
	dir := t.TempDir()
	pre := filepath.Join(dir, "preprocessor_config.json")
	os.WriteFile(pre, []byte(tinyPreprocessor), 0o644)
	imgs := filepath.Join(dir, "imgs")
	os.Mkdir(imgs, 0o755)
	var lines []string
	for i := range 5 {
		img := image.NewGray(image.Rect(0, 0, 8, 8))
		img.Pix[i] = 255
		var b bytes.Buffer
		png.Encode(&b, img)
		name := string(rune('a'+i)) + ".png"
		os.WriteFile(filepath.Join(imgs, name), b.Bytes(), 0o644)
		sum := sha256.Sum256(b.Bytes())
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+name+"\n")
	}
	p, err := verify.NewPreprocessor(mustPre(t, pre))
	if err != nil {
		t.Fatal(err)
	}
	in := graphInputs(imageModel())[0]
	src, err := NewImageSource(imgs, p, in, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	held := &skipSource{Source: src, skip: 3}
	n := 0
	for {
		if _, err := held.Next(context.Background()); err != nil {
			break
		}
		n++
	}
	want := sha256.Sum256([]byte(strings.Join(lines[3:], "")))
	if info := held.Info(); n != 2 || info.Count != 2 || info.SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("held out %d samples, info %+v; want 2 and the sha256 of d.png, e.png only", n, info)
	}
}
