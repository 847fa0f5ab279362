package convert

// DeiT (transformers models/deit): tokens are [CLS, DIST, patches]; the
// distilled model averages cls_classifier(h[:,0]) and
// distillation_classifier(h[:,1]). The encoder is ViT's (encoder.go,
// graph_encoder.go) with the distillation token. Non-distilled
// facebook/deit-* checkpoints are ViT classes and go through arch_vit.go.
var deitFamily = &family{
	Name: "deit",
	Archs: []Arch{
		{Name: "DeiTForImageClassification", Prefix: "deit.", Head: []string{"classifier."}},
		{Name: "DeiTForImageClassificationWithTeacher", Prefix: "deit.", Head: []string{"cls_classifier.", "distillation_classifier."}},
	},
	Tensors: deitTensors,
	Graph:   deitGraph,
	Patches: true,
	Presets: deitPresets,
}

// deitTensors lists DeiTForImageClassification's and
// DeiTForImageClassificationWithTeacher's tensors (modeling_deit.py).
func deitTensors(a *Arch, c *Config, _ bool) (specList, error) {
	p, err := readVitParams(c)
	if err != nil {
		return nil, err
	}
	var l specList
	l.vitEncoderTensors(a.Prefix, p, "cls_token", "distillation_token")
	switch a.Name {
	case "DeiTForImageClassificationWithTeacher":
		l.linear("cls_classifier", p.Labels, p.Hidden, true)
		l.linear("distillation_classifier", p.Labels, p.Hidden, true)
	default:
		l.linear("classifier", p.Labels, p.Hidden, true)
	}
	return l, nil
}

// deitConfig is a DeiT config.json: ViT's keys with model_type deit.
func deitConfig(arch string, hidden, heads int) map[string]any {
	c := vitConfig(arch, hidden, 12, heads, 4*hidden, 16, 224, 1000)
	c["model_type"] = "deit"
	return c
}

// deitProcessor is DeiTImageProcessor as facebook/deit-* publish it (also
// deit-tiny's, a ViT class: arch_vit.go).
var deitProcessor = cropProcessor("DeiTImageProcessor", 256, 224, false, imagenetMean, imagenetStd)

// deitPresets are the distilled facebook/deit-* models.
var deitPresets = []*Preset{
	{Name: "deit-base-distilled-patch16-224", Repo: "facebook/deit-base-distilled-patch16-224",
		Arch: "DeiTForImageClassificationWithTeacher", Params: "87M", Config: deitConfig("DeiTForImageClassificationWithTeacher", 768, 12), Pre: deitProcessor},
	{Name: "deit-small-distilled-patch16-224", Repo: "facebook/deit-small-distilled-patch16-224",
		Arch: "DeiTForImageClassificationWithTeacher", Params: "22M", Config: deitConfig("DeiTForImageClassificationWithTeacher", 384, 6), Pre: deitProcessor},
}
