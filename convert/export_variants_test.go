package convert

import (
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// randomCheckpoint writes a checkpoint for cfg with the architecture's tensor
// list and random values (LayerNorm weights near 1, layer scales near 0.5,
// everything else N(0, 0.3²)), so every config flag changes the output.
func randomCheckpoint(t *testing.T, cfg map[string]any, pooler bool, seed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig("config.json", b)
	if err != nil {
		t.Fatal(err)
	}
	a, err := LookupArch(c.Architecture())
	if err != nil {
		t.Fatal(err)
	}
	specs, err := a.Tensors(c, pooler)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Create(filepath.Join(dir, "model.safetensors"), map[string]string{"format": "pt"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	for _, s := range specs {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			x := 0.3 * r.NormFloat64()
			switch {
			case strings.Contains(s.Name, "norm") && strings.HasSuffix(s.Name, ".weight"):
				x = 1 + 0.1*r.NormFloat64()
			case strings.Contains(s.Name, "lambda"):
				x = 0.5 + 0.1*r.NormFloat64()
			}
			v[i] = float32(x)
		}
		if err := w.WriteTensor(s.Name, bytesOfF32(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// configVariant is one config a family's arch_<family>_test.go exports and
// checks against the float64 forward pass (runConfigVariants).
type configVariant struct {
	name   string
	cfg    map[string]any
	pooler bool // ViTModel: the checkpoint has pooler.dense
	opt    ExportOptions
	h, w   int
	seed   uint64 // of randomCheckpoint's values
}

// variantConfig is a two-layer config.json of arch with ViT's keys (hidden
// 32, 4 heads, 8×8 patches of a 32×32 image, 5 labels), then edit applied.
func variantConfig(arch string, edit map[string]any) map[string]any {
	c := map[string]any{"architectures": []string{arch}, "model_type": "vit", "hidden_size": 32,
		"num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48, "image_size": 32,
		"patch_size": 8, "num_channels": 3, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "qkv_bias": true, "num_labels": 5}
	for k, v := range edit {
		c[k] = v
	}
	return c
}

// runConfigVariants covers the config flags the reference checkpoints do not
// exercise (each family lists its cases in TestXxxConfigVariants): each
// config's random checkpoint is exported and run in ONNX Runtime, and every
// output is compared with the float64 forward pass (an implementation of
// the modeling code independent of the graph builders). Tolerance: fp32
// graph vs float64 on weights of scale 0.3 through two layers, 1e-4 of the
// output scale (measured ≤ 2e-6).
func runConfigVariants(t *testing.T, cases []configVariant) {
	t.Helper()
	fixtures(t)
	orttest.Require(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := randomCheckpoint(t, c.cfg, c.pooler, c.seed)
			out, m := exportTo(t, dir, c.opt)
			x, shape := testInputs(make([]float32, 3*c.h*c.w), []int64{1, 3, int64(c.h), int64(c.w)})
			got := runONNX(t, out, x, shape)
			ref := loadRefNet(t, dir).forwardBatch(x, shape)
			if len(got) != len(ref) {
				t.Fatalf("outputs %v, reference %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(ref)))
			}
			for name, want := range ref {
				a := compare64(got[name].F32, want)
				rel := a.MaxAbs / maxAbs64(want)
				t.Logf("%s: rel max-abs %.2g (ops %v)", name, rel, sortedOps(m.Ops))
				if rel > 1e-4 || math.IsNaN(rel) {
					t.Errorf("%s: relative max-abs %.3g from the float64 forward", name, rel)
				}
			}
		})
	}
}
