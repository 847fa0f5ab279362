package convert

import "testing"

// TestViTConfigVariants: activations, qkv_bias and layer_norm_eps the
// reference checkpoints do not use, ViTModel with and without pooler, and
// position embeddings resized for a 48×48 export (runConfigVariants).
func TestViTConfigVariants(t *testing.T) {
	runConfigVariants(t, []configVariant{
		{name: "vit gelu_new no qkv bias", cfg: variantConfig("ViTForImageClassification", map[string]any{"hidden_act": "gelu_new", "qkv_bias": false, "layer_norm_eps": 1e-5}), h: 32, w: 32, seed: 1},
		{name: "vit quick_gelu", cfg: variantConfig("ViTForImageClassification", map[string]any{"hidden_act": "quick_gelu"}), h: 32, w: 32, seed: 2},
		{name: "vitmodel relu no pooler", cfg: variantConfig("ViTModel", map[string]any{"hidden_act": "relu"}), h: 32, w: 32, seed: 3},
		{name: "vitmodel silu pooler at 48", cfg: variantConfig("ViTModel", map[string]any{"hidden_act": "silu"}), pooler: true, opt: ExportOptions{ImageSize: 48}, h: 48, w: 48, seed: 4},
	})
}
