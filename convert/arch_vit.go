package convert

// ViT (transformers models/vit): ViTForImageClassification classifies
// layernorm(h)[:,0]; ViTModel (DINO ViT checkpoints) has an optional pooler,
// tanh(dense(h[:,0])).
func init() {
	registerArch(&Arch{Name: "ViTForImageClassification", Family: "vit", Prefix: "vit.", Head: []string{"classifier."}, Tensors: vitFamilyTensors, Graph: vitGraph})
	registerArch(&Arch{Name: "ViTModel", Family: "vit", Prefix: "", Head: []string{"pooler."}, Tensors: vitFamilyTensors, Graph: vitGraph})
}
