package convert

import "fmt"

// BEiT (transformers models/beit): relative position bias per layer (or
// shared), layer scale lambda_1/lambda_2, key without bias, mean pooling of
// patch tokens followed by pooler.layernorm.
var beitFamily = &family{
	Name: "beit",
	Archs: []Arch{
		{Name: "BeitForImageClassification", Prefix: "beit.", Head: []string{"classifier."}},
	},
	Tensors: noPooler(beitTensors),
	Graph:   beitGraph,
	Patches: true,
	Presets: beitPresets,
}

// beitParams adds BEiT's flags.
type beitParams struct {
	vitParams
	AbsPos, RelPos, SharedRelPos, MeanPool, MaskToken bool
	LayerScale                                        float64
}

func readBeitParams(c *Config) (beitParams, error) {
	var b beitParams
	var err error
	if b.vitParams, err = readVitParams(c); err != nil {
		return b, err
	}
	b.AbsPos = c.Bool("use_absolute_position_embeddings", false)
	b.RelPos = c.Bool("use_relative_position_bias", false)
	b.SharedRelPos = c.Bool("use_shared_relative_position_bias", false)
	b.MeanPool = c.Bool("use_mean_pooling", true)
	b.MaskToken = c.Bool("use_mask_token", false)
	b.LayerScale = c.Float("layer_scale_init_value", 0.1)
	return b, c.Err()
}

// beitTableRows is the relative position bias table length for a window.
func beitTableRows(w int) int { return (2*w-1)*(2*w-1) + 3 }

// beitTensors lists BeitForImageClassification's tensors (modeling_beit.py).
func beitTensors(a *Arch, c *Config) (specList, error) {
	p, err := readBeitParams(c)
	if err != nil {
		return nil, err
	}
	var l specList
	pre := a.Prefix
	l.add(pre+"embeddings.cls_token", 1, 1, p.Hidden)
	if p.MaskToken {
		l.add(pre+"embeddings.mask_token", 1, 1, p.Hidden)
	}
	if p.AbsPos {
		l.add(pre+"embeddings.position_embeddings", 1, p.grid()*p.grid()+1, p.Hidden)
	}
	l.patchProjection(pre+"embeddings.patch_embeddings.projection", p.vitParams)
	rows := beitTableRows(p.grid())
	if p.SharedRelPos {
		l.add(pre+"encoder.relative_position_bias.relative_position_bias_table", rows, p.Heads)
	}
	for i := 0; i < p.Layers; i++ {
		b := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		l.linear(b+"attention.attention.query", p.Hidden, p.Hidden, true)
		l.linear(b+"attention.attention.key", p.Hidden, p.Hidden, false)
		l.linear(b+"attention.attention.value", p.Hidden, p.Hidden, true)
		if p.RelPos {
			l.add(b+"attention.attention.relative_position_bias.relative_position_bias_table", rows, p.Heads)
		}
		l.linear(b+"attention.output.dense", p.Hidden, p.Hidden, true)
		l.linear(b+"intermediate.dense", p.Inter, p.Hidden, true)
		l.linear(b+"output.dense", p.Hidden, p.Inter, true)
		l.norm(b+"layernorm_before", p.Hidden)
		l.norm(b+"layernorm_after", p.Hidden)
		if p.LayerScale > 0 {
			l.add(b+"lambda_1", p.Hidden)
			l.add(b+"lambda_2", p.Hidden)
		}
	}
	if p.MeanPool {
		l.norm(pre+"pooler.layernorm", p.Hidden)
	} else {
		l.norm(pre+"layernorm", p.Hidden)
	}
	l.linear("classifier", p.Labels, p.Hidden, true)
	return l, nil
}

// beitConfig is microsoft/beit-*-patch16-224's config.json: relative
// position bias per layer, layer scale 0.1, mean pooling.
func beitConfig(hidden, layers, heads int) map[string]any {
	return map[string]any{"architectures": []string{"BeitForImageClassification"}, "model_type": "beit",
		"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": 4 * hidden,
		"hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
		"layer_norm_eps": 1e-12, "image_size": 224, "patch_size": 16, "num_channels": 3,
		"use_mask_token": false, "use_absolute_position_embeddings": false, "use_relative_position_bias": true,
		"use_shared_relative_position_bias": false, "layer_scale_init_value": 0.1, "drop_path_rate": 0.1,
		"use_mean_pooling": true, "id2label": labels(1000)}
}

var beitProcessor = map[string]any{"image_processor_type": "BeitImageProcessor", "do_resize": true,
	"size": map[string]int{"height": 224, "width": 224}, "resample": 2, "do_center_crop": false,
	"do_rescale": true, "rescale_factor": 1.0 / 255, "do_normalize": true, "image_mean": halfMean, "image_std": halfMean}

// beitPresets are microsoft/beit-*-patch16-224.
var beitPresets = []*Preset{
	{Name: "beit-large-patch16-224", Repo: "microsoft/beit-large-patch16-224", Arch: "BeitForImageClassification",
		Params: "304M", Config: beitConfig(1024, 24, 16), Pre: beitProcessor},
	{Name: "beit-base-patch16-224", Repo: "microsoft/beit-base-patch16-224", Arch: "BeitForImageClassification",
		Params: "86M", Config: beitConfig(768, 12, 12), Pre: beitProcessor},
}
