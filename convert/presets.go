package convert

import (
	"fmt"
	"sort"

	"github.com/quantpack/quantpack/internal/hfconfig"
)

// Preset is a real model's configuration, for `quantpack synth`: the seed
// study's 16 models with random weights, for benchmarks without downloads.
type Preset struct {
	Name   string // preset name, the Hugging Face repo name without owner
	Repo   string // Hugging Face repo the config comes from
	Arch   string // architectures[0]
	Params string // parameter count as the seed study states it
	Pooler bool   // ViTModel: checkpoint has pooler.dense
	Config map[string]any
	Pre    map[string]any // preprocessor_config.json
}

var presets = map[string]*Preset{}

func addPreset(p *Preset) {
	if _, dup := presets[p.Name]; dup {
		panic("convert: preset registered twice: " + p.Name)
	}
	presets[p.Name] = p
}

// Presets returns every preset sorted by name.
func Presets() []*Preset {
	out := make([]*Preset, 0, len(presets))
	for _, p := range presets {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupPreset finds a preset by name.
func LookupPreset(name string) (*Preset, error) {
	if p, ok := presets[name]; ok {
		return p, nil
	}
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	return nil, usage(fmt.Errorf("unknown preset %q; `quantpack synth --list` shows them: %v", name, names))
}

// Image processor settings of the model cards (transformers' constants, as
// hfconfig keeps them).
var (
	imagenetMean = hfconfig.ImageNetDefaultMean[:]
	imagenetStd  = hfconfig.ImageNetDefaultStd[:]
	halfMean     = hfconfig.ImageNetStandardMean[:]
)

func vitProcessor(size int, mean, std []float64) map[string]any {
	return map[string]any{"image_processor_type": "ViTImageProcessor", "do_resize": true,
		"size": map[string]int{"height": size, "width": size}, "resample": 2, "do_rescale": true,
		"rescale_factor": 1.0 / 255, "do_normalize": true, "image_mean": mean, "image_std": std}
}

func cropProcessor(kind string, resize, crop int, shortest bool, mean, std []float64) map[string]any {
	size := map[string]int{"height": resize, "width": resize}
	if shortest {
		size = map[string]int{"shortest_edge": resize}
	}
	return map[string]any{"image_processor_type": kind, "do_resize": true, "size": size, "resample": 3,
		"do_center_crop": true, "crop_size": map[string]int{"height": crop, "width": crop}, "do_rescale": true,
		"rescale_factor": 1.0 / 255, "do_normalize": true, "image_mean": mean, "image_std": std}
}

func labels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprint(i)] = fmt.Sprintf("LABEL_%d", i)
	}
	return m
}

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

func init() {
	// ViT (google/*): in21k checkpoints are ViTModel with a trained pooler.
	addPreset(&Preset{Name: "vit-huge-patch14-224", Repo: "google/vit-huge-patch14-224-in21k", Arch: "ViTModel", Params: "632M",
		Pooler: true, Config: vitConfig("ViTModel", 1280, 32, 16, 5120, 14, 224, 0), Pre: vitProcessor(224, halfMean, halfMean)})
	addPreset(&Preset{Name: "vit-large-patch16-224", Repo: "google/vit-large-patch16-224", Arch: "ViTForImageClassification", Params: "307M",
		Config: vitConfig("ViTForImageClassification", 1024, 24, 16, 4096, 16, 224, 1000), Pre: vitProcessor(224, halfMean, halfMean)})
	addPreset(&Preset{Name: "vit-base-patch16-384", Repo: "google/vit-base-patch16-384", Arch: "ViTForImageClassification", Params: "86M",
		Config: vitConfig("ViTForImageClassification", 768, 12, 12, 3072, 16, 384, 1000), Pre: vitProcessor(384, halfMean, halfMean)})
	addPreset(&Preset{Name: "vit-base-patch16-224", Repo: "google/vit-base-patch16-224", Arch: "ViTForImageClassification", Params: "86M",
		Config: vitConfig("ViTForImageClassification", 768, 12, 12, 3072, 16, 224, 1000), Pre: vitProcessor(224, halfMean, halfMean)})
	addPreset(&Preset{Name: "vit-base-patch32-224", Repo: "google/vit-base-patch32-224-in21k", Arch: "ViTModel", Params: "88M",
		Pooler: true, Config: vitConfig("ViTModel", 768, 12, 12, 3072, 32, 224, 0), Pre: vitProcessor(224, halfMean, halfMean)})
	// DINO (facebook/dino-*): ViTModel without a pooler in the checkpoint.
	addPreset(&Preset{Name: "dino-vitb16", Repo: "facebook/dino-vitb16", Arch: "ViTModel", Params: "86M",
		Config: vitConfig("ViTModel", 768, 12, 12, 3072, 16, 224, 0), Pre: cropProcessor("ViTImageProcessor", 224, 224, false, imagenetMean, imagenetStd)})
	addPreset(&Preset{Name: "dino-vits16", Repo: "facebook/dino-vits16", Arch: "ViTModel", Params: "22M",
		Config: vitConfig("ViTModel", 384, 12, 6, 1536, 16, 224, 0), Pre: cropProcessor("ViTImageProcessor", 224, 224, false, imagenetMean, imagenetStd)})
	// DeiT: distilled models have their own class; deit-tiny is a ViT class.
	deit := func(arch string, hidden, heads int) map[string]any {
		c := vitConfig(arch, hidden, 12, heads, 4*hidden, 16, 224, 1000)
		c["model_type"] = "deit"
		return c
	}
	deitPre := cropProcessor("DeiTImageProcessor", 256, 224, false, imagenetMean, imagenetStd)
	addPreset(&Preset{Name: "deit-base-distilled-patch16-224", Repo: "facebook/deit-base-distilled-patch16-224",
		Arch: "DeiTForImageClassificationWithTeacher", Params: "87M", Config: deit("DeiTForImageClassificationWithTeacher", 768, 12), Pre: deitPre})
	addPreset(&Preset{Name: "deit-small-distilled-patch16-224", Repo: "facebook/deit-small-distilled-patch16-224",
		Arch: "DeiTForImageClassificationWithTeacher", Params: "22M", Config: deit("DeiTForImageClassificationWithTeacher", 384, 6), Pre: deitPre})
	tiny := vitConfig("ViTForImageClassification", 192, 12, 3, 768, 16, 224, 1000)
	addPreset(&Preset{Name: "deit-tiny-patch16-224", Repo: "facebook/deit-tiny-patch16-224", Arch: "ViTForImageClassification",
		Params: "5.7M", Config: tiny, Pre: deitPre})
	// DINOv2: config image_size 518, processor resizes to 256 and crops 224.
	dinov2 := func(hidden, layers, heads int) map[string]any {
		return map[string]any{"architectures": []string{"Dinov2Model"}, "model_type": "dinov2", "hidden_size": hidden,
			"num_hidden_layers": layers, "num_attention_heads": heads, "mlp_ratio": 4, "hidden_act": "gelu",
			"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
			"layer_norm_eps": 1e-6, "image_size": 518, "patch_size": 14, "num_channels": 3, "qkv_bias": true,
			"layerscale_value": 1.0, "drop_path_rate": 0.0, "use_swiglu_ffn": false}
	}
	dinoPre := cropProcessor("BitImageProcessor", 256, 224, true, imagenetMean, imagenetStd)
	addPreset(&Preset{Name: "dinov2-large", Repo: "facebook/dinov2-large", Arch: "Dinov2Model", Params: "304M", Config: dinov2(1024, 24, 16), Pre: dinoPre})
	addPreset(&Preset{Name: "dinov2-base", Repo: "facebook/dinov2-base", Arch: "Dinov2Model", Params: "86M", Config: dinov2(768, 12, 12), Pre: dinoPre})
	// BEiT (microsoft/beit-*-patch16-224): relative position bias per layer,
	// layer scale 0.1, mean pooling.
	beit := func(hidden, layers, heads int) map[string]any {
		return map[string]any{"architectures": []string{"BeitForImageClassification"}, "model_type": "beit",
			"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": 4 * hidden,
			"hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
			"layer_norm_eps": 1e-12, "image_size": 224, "patch_size": 16, "num_channels": 3,
			"use_mask_token": false, "use_absolute_position_embeddings": false, "use_relative_position_bias": true,
			"use_shared_relative_position_bias": false, "layer_scale_init_value": 0.1, "drop_path_rate": 0.1,
			"use_mean_pooling": true, "id2label": labels(1000)}
	}
	beitPre := map[string]any{"image_processor_type": "BeitImageProcessor", "do_resize": true,
		"size": map[string]int{"height": 224, "width": 224}, "resample": 2, "do_center_crop": false,
		"do_rescale": true, "rescale_factor": 1.0 / 255, "do_normalize": true, "image_mean": halfMean, "image_std": halfMean}
	addPreset(&Preset{Name: "beit-large-patch16-224", Repo: "microsoft/beit-large-patch16-224", Arch: "BeitForImageClassification",
		Params: "304M", Config: beit(1024, 24, 16), Pre: beitPre})
	addPreset(&Preset{Name: "beit-base-patch16-224", Repo: "microsoft/beit-base-patch16-224", Arch: "BeitForImageClassification",
		Params: "86M", Config: beit(768, 12, 12), Pre: beitPre})
}
