package convert

import "fmt"

// Expected tensor lists, as transformers' save_pretrained writes them. The
// graph builders read tensors by these names, synth writes them, and
// TestTensorListsMatchFixtures compares them with the reference checkpoints.

// vitFamilyTensors covers ViT and DeiT (same encoder naming).
func vitFamilyTensors(a *Arch, c *Config, pooler bool) (specList, error) {
	p, err := readVitParams(c)
	if err != nil {
		return nil, err
	}
	var l specList
	pre := a.Prefix
	tokens := 1
	l.add(pre+"embeddings.cls_token", 1, 1, p.Hidden)
	if a.Family == "deit" {
		l.add(pre+"embeddings.distillation_token", 1, 1, p.Hidden)
		tokens = 2
	}
	l.add(pre+"embeddings.position_embeddings", 1, p.grid()*p.grid()+tokens, p.Hidden)
	l.add(pre+"embeddings.patch_embeddings.projection.weight", p.Hidden, p.Channels, p.Patch, p.Patch)
	l.add(pre+"embeddings.patch_embeddings.projection.bias", p.Hidden)
	for i := 0; i < p.Layers; i++ {
		b := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		for _, qkv := range []string{"query", "key", "value"} {
			l.linear(b+"attention.attention."+qkv, p.Hidden, p.Hidden, p.QKVBias)
		}
		l.linear(b+"attention.output.dense", p.Hidden, p.Hidden, true)
		l.linear(b+"intermediate.dense", p.Inter, p.Hidden, true)
		l.linear(b+"output.dense", p.Hidden, p.Inter, true)
		l.norm(b+"layernorm_before", p.Hidden)
		l.norm(b+"layernorm_after", p.Hidden)
	}
	l.norm(pre+"layernorm", p.Hidden)
	switch a.Name {
	case "ViTModel":
		if pooler {
			l.linear("pooler.dense", p.Hidden, p.Hidden, true)
		}
	case "DeiTForImageClassificationWithTeacher":
		l.linear("cls_classifier", p.Labels, p.Hidden, true)
		l.linear("distillation_classifier", p.Labels, p.Hidden, true)
	default:
		l.linear("classifier", p.Labels, p.Hidden, true)
	}
	return l, nil
}

// dinov2Params adds DINOv2's keys.
type dinov2Params struct {
	vitParams
	SwiGLU     bool
	LayerScale float64
	MLPHidden  int // fc1 out, or SwiGLU hidden features
}

func readDinov2Params(c *Config) (dinov2Params, error) {
	var d dinov2Params
	var err error
	if d.vitParams, err = readVitParams(c); err != nil {
		return d, err
	}
	ratio := c.Float("mlp_ratio", 4)
	d.SwiGLU = c.Bool("use_swiglu_ffn", false)
	d.LayerScale = c.Float("layerscale_value", 1)
	if err := c.Err(); err != nil {
		return d, err
	}
	if ratio <= 0 || ratio > 64 {
		return d, c.Invalid("mlp_ratio %g out of range", ratio)
	}
	d.MLPHidden = int(float64(d.Hidden) * ratio)
	if d.SwiGLU {
		// Dinov2SwiGLUFFN: hidden = int(hidden*2/3) rounded up to a multiple of 8.
		d.MLPHidden = (int(float64(d.MLPHidden)*2/3) + 7) / 8 * 8
	}
	d.Inter = d.MLPHidden
	return d, nil
}

func dinov2Tensors(a *Arch, c *Config) (specList, error) {
	p, err := readDinov2Params(c)
	if err != nil {
		return nil, err
	}
	var l specList
	pre := a.Prefix
	l.add(pre+"embeddings.cls_token", 1, 1, p.Hidden)
	l.add(pre+"embeddings.mask_token", 1, p.Hidden)
	l.add(pre+"embeddings.position_embeddings", 1, p.grid()*p.grid()+1, p.Hidden)
	l.add(pre+"embeddings.patch_embeddings.projection.weight", p.Hidden, p.Channels, p.Patch, p.Patch)
	l.add(pre+"embeddings.patch_embeddings.projection.bias", p.Hidden)
	for i := 0; i < p.Layers; i++ {
		b := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		for _, qkv := range []string{"query", "key", "value"} {
			l.linear(b+"attention.attention."+qkv, p.Hidden, p.Hidden, p.QKVBias)
		}
		l.linear(b+"attention.output.dense", p.Hidden, p.Hidden, true)
		l.add(b+"layer_scale1.lambda1", p.Hidden)
		l.add(b+"layer_scale2.lambda1", p.Hidden)
		if p.SwiGLU {
			l.linear(b+"mlp.weights_in", 2*p.MLPHidden, p.Hidden, true)
			l.linear(b+"mlp.weights_out", p.Hidden, p.MLPHidden, true)
		} else {
			l.linear(b+"mlp.fc1", p.MLPHidden, p.Hidden, true)
			l.linear(b+"mlp.fc2", p.Hidden, p.MLPHidden, true)
		}
		l.norm(b+"norm1", p.Hidden)
		l.norm(b+"norm2", p.Hidden)
	}
	l.norm(pre+"layernorm", p.Hidden)
	if a.Name == "Dinov2ForImageClassification" {
		l.linear("classifier", p.Labels, 2*p.Hidden, true)
	}
	return l, nil
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
	l.add(pre+"embeddings.patch_embeddings.projection.weight", p.Hidden, p.Channels, p.Patch, p.Patch)
	l.add(pre+"embeddings.patch_embeddings.projection.bias", p.Hidden)
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
