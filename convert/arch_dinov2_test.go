package convert

import "testing"

// dinov2VariantConfig is a two-layer DINOv2 config (mlp_ratio 2, 7×7 patches
// of a 28×28 image), then edit applied.
func dinov2VariantConfig(arch string, edit map[string]any) map[string]any {
	c := variantConfig(arch, map[string]any{"model_type": "dinov2", "mlp_ratio": 2, "image_size": 28, "patch_size": 7,
		"layer_norm_eps": 1e-6, "layerscale_value": 1.0})
	delete(c, "intermediate_size")
	for k, v := range edit {
		c[k] = v
	}
	return c
}

// TestDINOv2ConfigVariants: the SwiGLU MLP, and the classifier at 42×42 with
// opset 18 (ReduceMean's axes become an input) (runConfigVariants).
func TestDINOv2ConfigVariants(t *testing.T) {
	runConfigVariants(t, []configVariant{
		{name: "dinov2 swiglu", cfg: dinov2VariantConfig("Dinov2Model", map[string]any{"use_swiglu_ffn": true}), h: 28, w: 28, seed: 6},
		{name: "dinov2 cls opset 18 at 42", cfg: dinov2VariantConfig("Dinov2ForImageClassification", nil), opt: ExportOptions{ImageSize: 42, Opset: 18}, h: 42, w: 42, seed: 7},
	})
}
