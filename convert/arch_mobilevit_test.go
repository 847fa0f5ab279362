package convert

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestMobileViTExportMatchesTransformers exports the MobileViT reference
// checkpoint at fp32 and compares ONNX Runtime's logits with the
// transformers 4.47 output: cosine ≥ 0.99999 and max-abs ≤ 1e-4 (the
// issue's bar; float32 vs float64 forwards of the fixture differ by 4.5e-8,
// and BatchNorm folding moves each weight by about one float32 ulp).
func TestMobileViTExportMatchesTransformers(t *testing.T) {
	fx := fixtures(t)
	needORT(t)
	dir := filepath.Join(fx, "reference", "mobilevit")
	ref := readRef(t, dir)
	for _, plain := range []bool{false, true} {
		for _, c := range ref.Cases {
			out, m := exportTo(t, dir, ExportOptions{Precision: ExportFP32, ImageSize: int(c.Input.Shape[3]), Plain: plain})
			got := runONNX(t, out, readBin(t, filepath.Join(dir, c.Input.File)), c.Input.Shape)
			for name, o := range c.Outputs {
				g, ok := got[name]
				if !ok {
					t.Fatalf("no output %q (have %v; ops %v)", name, keys(got), sortedOps(m.Ops))
				}
				a := compare(g.F32, readBin(t, filepath.Join(dir, o.File)))
				t.Logf("plain=%v case %s %s: cosine %.9f max-abs %.3g", plain, c.Name, name, a.Cosine, a.MaxAbs)
				if a.Cosine < 0.99999 || a.MaxAbs > 1e-4 {
					t.Errorf("plain=%v case %s: %s cosine %.9f max-abs %.3g (want ≥ 0.99999, ≤ 1e-4)", plain, c.Name, name, a.Cosine, a.MaxAbs)
				}
			}
		}
	}
}

// TestMobileViTPresetParams checks the presets' tensor lists against the
// parameter counts the model cards state (1.3M and 5.6M, rounded), which
// catches a wrong expand ratio or stage depth in the list.
func TestMobileViTPresetParams(t *testing.T) {
	for name, want := range map[string]float64{"mobilevit-xx-small": 1.3e6, "mobilevit-small": 5.6e6} {
		p, err := LookupPreset(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig(name, mustJSON(t, p.Config))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := LookupArch(p.Arch)
		specs, err := a.Tensors(a, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, s := range specs {
			if !strings.HasSuffix(s.Name, "num_batches_tracked") && !strings.Contains(s.Name, "running_") {
				n += specBytes(s) / 4
			}
		}
		t.Logf("%s: %d parameters", name, n)
		if math.Abs(float64(n)-want) > 0.05e6 {
			t.Errorf("%s: %d parameters, model card says %.1fM", name, n, want/1e6)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
