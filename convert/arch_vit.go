package convert

// ViT (transformers models/vit): ViTForImageClassification classifies
// layernorm(h)[:,0]; ViTModel (DINO ViT checkpoints) has an optional pooler,
// tanh(dense(h[:,0])). The encoder is shared with DeiT (encoder.go,
// graph_encoder.go).
var vitFamily = &family{
	Name: "vit",
	Archs: []Arch{
		{Name: "ViTForImageClassification", Prefix: "vit.", Head: []string{"classifier."}},
		{Name: "ViTModel", Prefix: "", Head: []string{"pooler."}},
	},
	Tensors: vitTensors,
	Graph:   vitGraph,
	Patches: true,
	Presets: vitPresets,
}

// vitTensors lists ViTForImageClassification's and ViTModel's tensors
// (modeling_vit.py).
func vitTensors(a *Arch, c *Config, pooler bool) (specList, error) {
	p, err := readVitParams(c)
	if err != nil {
		return nil, err
	}
	var l specList
	l.vitEncoderTensors(a.Prefix, p, "cls_token")
	switch a.Name {
	case "ViTModel":
		if pooler {
			l.linear("pooler.dense", p.Hidden, p.Hidden, true)
		}
	default:
		l.linear("classifier", p.Labels, p.Hidden, true)
	}
	return l, nil
}

// vitPresets: google/vit-* (in21k checkpoints are ViTModel with a trained
// pooler), DINO (facebook/dino-*: ViTModel without a pooler in the
// checkpoint), and deit-tiny, which is published as a ViT class.
var vitPresets = []*Preset{
	{Name: "vit-huge-patch14-224", Repo: "google/vit-huge-patch14-224-in21k", Arch: "ViTModel", Params: "632M",
		Pooler: true, Config: vitConfig("ViTModel", 1280, 32, 16, 5120, 14, 224, 0), Pre: vitProcessor(224, halfMean, halfMean)},
	{Name: "vit-large-patch16-224", Repo: "google/vit-large-patch16-224", Arch: "ViTForImageClassification", Params: "307M",
		Config: vitConfig("ViTForImageClassification", 1024, 24, 16, 4096, 16, 224, 1000), Pre: vitProcessor(224, halfMean, halfMean)},
	{Name: "vit-base-patch16-384", Repo: "google/vit-base-patch16-384", Arch: "ViTForImageClassification", Params: "86M",
		Config: vitConfig("ViTForImageClassification", 768, 12, 12, 3072, 16, 384, 1000), Pre: vitProcessor(384, halfMean, halfMean)},
	{Name: "vit-base-patch16-224", Repo: "google/vit-base-patch16-224", Arch: "ViTForImageClassification", Params: "86M",
		Config: vitConfig("ViTForImageClassification", 768, 12, 12, 3072, 16, 224, 1000), Pre: vitProcessor(224, halfMean, halfMean)},
	{Name: "vit-base-patch32-224", Repo: "google/vit-base-patch32-224-in21k", Arch: "ViTModel", Params: "88M",
		Pooler: true, Config: vitConfig("ViTModel", 768, 12, 12, 3072, 32, 224, 0), Pre: vitProcessor(224, halfMean, halfMean)},
	{Name: "dino-vitb16", Repo: "facebook/dino-vitb16", Arch: "ViTModel", Params: "86M",
		Config: vitConfig("ViTModel", 768, 12, 12, 3072, 16, 224, 0), Pre: cropProcessor("ViTImageProcessor", 224, 224, false, imagenetMean, imagenetStd)},
	{Name: "dino-vits16", Repo: "facebook/dino-vits16", Arch: "ViTModel", Params: "22M",
		Config: vitConfig("ViTModel", 384, 12, 6, 1536, 16, 224, 0), Pre: cropProcessor("ViTImageProcessor", 224, 224, false, imagenetMean, imagenetStd)},
	{Name: "deit-tiny-patch16-224", Repo: "facebook/deit-tiny-patch16-224", Arch: "ViTForImageClassification",
		Params: "5.7M", Config: vitConfig("ViTForImageClassification", 192, 12, 3, 768, 16, 224, 1000), Pre: deitProcessor},
}

// vitConfig is a ViT config.json (google/vit-*; DeiT changes model_type).
func vitConfig(arch string, hidden, layers, heads, inter, patch, image, nlabels int) map[string]any {
	c := map[string]any{"architectures": []string{arch}, "model_type": "vit", "hidden_size": hidden,
		"num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": inter,
		"hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
		"initializer_range": 0.02, "layer_norm_eps": 1e-12, "image_size": image, "patch_size": patch,
		"num_channels": 3, "qkv_bias": true, "encoder_stride": patch}
	if nlabels > 0 {
		c["id2label"] = labels(nlabels)
	}
	return c
}

// vitProcessor is a ViTImageProcessor that resizes to size×size.
func vitProcessor(size int, mean, std []float64) map[string]any {
	return map[string]any{"image_processor_type": "ViTImageProcessor", "do_resize": true,
		"size": map[string]int{"height": size, "width": size}, "resample": 2, "do_rescale": true,
		"rescale_factor": 1.0 / 255, "do_normalize": true, "image_mean": mean, "image_std": std}
}
