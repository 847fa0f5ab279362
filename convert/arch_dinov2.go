package convert

// DINOv2 (transformers models/dinov2): norm1/norm2, mlp.fc1/fc2 (or SwiGLU
// weights_in/weights_out), layer_scale{1,2}.lambda1, bicubic-resized position
// embeddings; the classifier takes concat(CLS, mean of patch tokens).
func init() {
	registerArch(&Arch{Name: "Dinov2Model", Family: "dinov2", Prefix: "", Tensors: noPooler(dinov2Tensors), Graph: dinov2Graph})
	registerArch(&Arch{Name: "Dinov2ForImageClassification", Family: "dinov2", Prefix: "dinov2.", Head: []string{"classifier."}, Tensors: noPooler(dinov2Tensors), Graph: dinov2Graph})
}
