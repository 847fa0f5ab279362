package convert

// DeiT (transformers models/deit): tokens are [CLS, DIST, patches]; the
// distilled model averages cls_classifier(h[:,0]) and
// distillation_classifier(h[:,1]). Non-distilled facebook/deit-* checkpoints
// are ViT classes and go through arch_vit.go.
func init() {
	registerArch(&Arch{Name: "DeiTForImageClassification", Family: "deit", Prefix: "deit.", Head: []string{"classifier."}, Tensors: vitFamilyTensors, Graph: vitGraph})
	registerArch(&Arch{Name: "DeiTForImageClassificationWithTeacher", Family: "deit", Prefix: "deit.",
		Head: []string{"cls_classifier.", "distillation_classifier."}, Tensors: vitFamilyTensors, Graph: vitGraph})
}
