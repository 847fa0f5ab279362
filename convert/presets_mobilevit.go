package convert

// MobileViT presets (apple/mobilevit-*): config.json values as published,
// 1000 ImageNet classes. MobileViTImageProcessor resizes the shortest edge to
// 288 (bilinear), center-crops 256, rescales by 1/255 without normalization
// and flips RGB to BGR (do_flip_channel_order), as the original cvnets
// models were trained.
func init() {
	mobilevit := func(hidden, neck []int, expand, hiddenDropout float64) map[string]any {
		return map[string]any{"architectures": []string{"MobileViTForImageClassification"}, "model_type": "mobilevit",
			"num_channels": 3, "image_size": 256, "patch_size": 2, "hidden_sizes": hidden, "neck_hidden_sizes": neck,
			"num_attention_heads": 4, "mlp_ratio": 2.0, "expand_ratio": expand, "hidden_act": "silu",
			"conv_kernel_size": 3, "output_stride": 32, "hidden_dropout_prob": hiddenDropout,
			"attention_probs_dropout_prob": 0.0, "classifier_dropout_prob": 0.1, "initializer_range": 0.02,
			"layer_norm_eps": 1e-5, "qkv_bias": true, "aspp_out_channels": 256, "atrous_rates": []int{6, 12, 18},
			"aspp_dropout_prob": 0.1, "semantic_loss_ignore_index": 255, "id2label": labels(1000)}
	}
	pre := map[string]any{"image_processor_type": "MobileViTImageProcessor", "do_resize": true,
		"size": map[string]int{"shortest_edge": 288}, "resample": 2, "do_center_crop": true,
		"crop_size": map[string]int{"height": 256, "width": 256}, "do_rescale": true, "rescale_factor": 1.0 / 255,
		"do_flip_channel_order": true}
	addPreset(&Preset{Name: "mobilevit-small", Repo: "apple/mobilevit-small", Arch: "MobileViTForImageClassification",
		Params: "5.6M", Config: mobilevit([]int{144, 192, 240}, []int{16, 32, 64, 96, 128, 160, 640}, 4.0, 0.1), Pre: pre})
	addPreset(&Preset{Name: "mobilevit-xx-small", Repo: "apple/mobilevit-xx-small", Arch: "MobileViTForImageClassification",
		Params: "1.3M", Config: mobilevit([]int{64, 80, 96}, []int{16, 16, 24, 48, 64, 80, 320}, 2.0, 0.05), Pre: pre})
}
