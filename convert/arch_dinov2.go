package convert

import "fmt"

// DINOv2 (transformers models/dinov2): norm1/norm2, mlp.fc1/fc2 (or SwiGLU
// weights_in/weights_out), layer_scale{1,2}.lambda1, bicubic-resized position
// embeddings; the classifier takes concat(CLS, mean of patch tokens).
var dinov2Family = &family{
	Name: "dinov2",
	Archs: []Arch{
		{Name: "Dinov2Model", Prefix: ""},
		{Name: "Dinov2ForImageClassification", Prefix: "dinov2.", Head: []string{"classifier."}},
	},
	Tensors: noPooler(dinov2Tensors),
	Graph:   dinov2Graph,
	Patches: true,
	Presets: dinov2Presets,
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

// dinov2Tensors lists Dinov2Model's and Dinov2ForImageClassification's
// tensors (modeling_dinov2.py).
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
	l.patchProjection(pre+"embeddings.patch_embeddings.projection", p.vitParams)
	for i := 0; i < p.Layers; i++ {
		b := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		l.selfAttention(b+"attention", p.Hidden, p.QKVBias)
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

// dinov2Config is facebook/dinov2-*'s config.json: image_size 518 (the
// processor resizes to 256 and crops 224).
func dinov2Config(hidden, layers, heads int) map[string]any {
	return map[string]any{"architectures": []string{"Dinov2Model"}, "model_type": "dinov2", "hidden_size": hidden,
		"num_hidden_layers": layers, "num_attention_heads": heads, "mlp_ratio": 4, "hidden_act": "gelu",
		"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
		"layer_norm_eps": 1e-6, "image_size": 518, "patch_size": 14, "num_channels": 3, "qkv_bias": true,
		"layerscale_value": 1.0, "drop_path_rate": 0.0, "use_swiglu_ffn": false}
}

var dinov2Processor = cropProcessor("BitImageProcessor", 256, 224, true, imagenetMean, imagenetStd)

// dinov2Presets are facebook/dinov2-*.
var dinov2Presets = []*Preset{
	{Name: "dinov2-large", Repo: "facebook/dinov2-large", Arch: "Dinov2Model", Params: "304M", Config: dinov2Config(1024, 24, 16), Pre: dinov2Processor},
	{Name: "dinov2-base", Repo: "facebook/dinov2-base", Arch: "Dinov2Model", Params: "86M", Config: dinov2Config(768, 12, 12), Pre: dinov2Processor},
}
