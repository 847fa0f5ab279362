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

// TestExportConfigVariants covers the config flags the reference checkpoints
// do not exercise, against the float64 forward pass (an implementation of
// the modeling code independent of the graph builders): activations,
// qkv_bias, layer_norm_eps, SwiGLU, BEiT's shared bias, absolute position
// embeddings, CLS pooling and no layer scale, non-square export sizes, and
// opsets 18 and 21 (ReduceMean's axes become an input). Tolerance: fp32
// graph vs float64 on weights of scale 0.3 through two layers, 1e-4 of the
// output scale (measured ≤ 2e-6).
func TestExportConfigVariants(t *testing.T) {
	fixtures(t)
	needORT(t)
	vit := func(arch string, edit map[string]any) map[string]any {
		c := map[string]any{"architectures": []string{arch}, "model_type": "vit", "hidden_size": 32,
			"num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48, "image_size": 32,
			"patch_size": 8, "num_channels": 3, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "qkv_bias": true, "num_labels": 5}
		for k, v := range edit {
			c[k] = v
		}
		return c
	}
	dino := func(arch string, edit map[string]any) map[string]any {
		c := vit(arch, map[string]any{"model_type": "dinov2", "mlp_ratio": 2, "image_size": 28, "patch_size": 7,
			"layer_norm_eps": 1e-6, "layerscale_value": 1.0})
		delete(c, "intermediate_size")
		for k, v := range edit {
			c[k] = v
		}
		return c
	}
	beit := func(edit map[string]any) map[string]any {
		c := vit("BeitForImageClassification", map[string]any{"model_type": "beit", "use_absolute_position_embeddings": false,
			"use_relative_position_bias": true, "use_shared_relative_position_bias": false, "use_mean_pooling": true,
			"layer_scale_init_value": 0.1})
		for k, v := range edit {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name   string
		cfg    map[string]any
		pooler bool
		opt    ExportOptions
		h, w   int
	}{
		{"vit gelu_new no qkv bias", vit("ViTForImageClassification", map[string]any{"hidden_act": "gelu_new", "qkv_bias": false, "layer_norm_eps": 1e-5}), false, ExportOptions{}, 32, 32},
		{"vit quick_gelu", vit("ViTForImageClassification", map[string]any{"hidden_act": "quick_gelu"}), false, ExportOptions{}, 32, 32},
		{"vitmodel relu no pooler", vit("ViTModel", map[string]any{"hidden_act": "relu"}), false, ExportOptions{}, 32, 32},
		{"vitmodel silu pooler at 48", vit("ViTModel", map[string]any{"hidden_act": "silu"}), true, ExportOptions{ImageSize: 48}, 48, 48},
		{"deit distilled at 24", vit("DeiTForImageClassificationWithTeacher", map[string]any{"model_type": "deit"}), false, ExportOptions{ImageSize: 24}, 24, 24},
		{"dinov2 swiglu", dino("Dinov2Model", map[string]any{"use_swiglu_ffn": true}), false, ExportOptions{}, 28, 28},
		{"dinov2 cls opset 18 at 42", dino("Dinov2ForImageClassification", nil), false, ExportOptions{ImageSize: 42, Opset: 18}, 42, 42},
		{"beit shared bias opset 21", beit(map[string]any{"use_shared_relative_position_bias": true, "use_relative_position_bias": false}), false, ExportOptions{Opset: 21}, 32, 32},
		{"beit both biases abs pos", beit(map[string]any{"use_shared_relative_position_bias": true, "use_absolute_position_embeddings": true}), false, ExportOptions{}, 32, 32},
		{"beit at 48 (table resized)", beit(nil), false, ExportOptions{ImageSize: 48}, 48, 48},
		{"beit shared bias abs pos at 24", beit(map[string]any{"use_shared_relative_position_bias": true, "use_absolute_position_embeddings": true}), false, ExportOptions{ImageSize: 24}, 24, 24},
		{"beit cls pooling no layer scale", beit(map[string]any{"use_mean_pooling": false, "layer_scale_init_value": 0.0}), false, ExportOptions{Plain: true}, 32, 32},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := randomCheckpoint(t, c.cfg, c.pooler, uint64(i+1))
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
