package convert

import "testing"

// TestDeiTConfigVariants: the distilled model exported at 24×24, so the
// position embeddings are resized with two token rows (CLS, DIST) kept
// (runConfigVariants).
func TestDeiTConfigVariants(t *testing.T) {
	runConfigVariants(t, []configVariant{
		{name: "deit distilled at 24", cfg: variantConfig("DeiTForImageClassificationWithTeacher", map[string]any{"model_type": "deit"}), opt: ExportOptions{ImageSize: 24}, h: 24, w: 24, seed: 5},
	})
}
