package convert

import "fmt"

// What the ViT-style encoders (ViT, DeiT, DINOv2, BEiT) share on the config
// and tensor side: the hyperparameters and the ViTLayer stack's tensors. The
// graph side is graph_encoder.go.

// vitParams are the hyperparameters the transformer families share.
type vitParams struct {
	Hidden, Layers, Heads, Inter int
	Patch, Image, Channels       int
	Labels                       int
	Eps                          float64
	Act                          string
	QKVBias                      bool
}

func (p vitParams) grid() int { return p.Image / p.Patch }

// readVitParams reads and bounds-checks the shared keys.
func readVitParams(c *Config) (vitParams, error) {
	p := vitParams{
		Hidden:   c.Int("hidden_size", 768),
		Layers:   c.Int("num_hidden_layers", 12),
		Heads:    c.Int("num_attention_heads", 12),
		Inter:    c.Int("intermediate_size", 3072),
		Patch:    c.Int("patch_size", 16),
		Image:    c.Int("image_size", 224),
		Channels: c.Int("num_channels", 3),
		Eps:      c.Float("layer_norm_eps", 1e-12),
		Act:      c.String("hidden_act", "gelu"),
		QKVBias:  c.Bool("qkv_bias", true),
	}
	p.Labels = c.NumLabels()
	if err := c.Err(); err != nil {
		return p, err
	}
	bad := c.Invalid
	switch {
	case p.Hidden <= 0 || p.Hidden > maxHidden:
		return p, bad("hidden_size %d out of range", p.Hidden)
	case p.Layers <= 0 || p.Layers > maxLayers:
		return p, bad("num_hidden_layers %d out of range", p.Layers)
	case p.Heads <= 0 || p.Hidden%p.Heads != 0:
		return p, bad("hidden_size %d not divisible by num_attention_heads %d", p.Hidden, p.Heads)
	case p.Inter <= 0 || p.Inter > 8*maxHidden:
		return p, bad("intermediate_size %d out of range", p.Inter)
	case p.Patch <= 0 || p.Patch > maxImage || p.Image <= 0 || p.Image > maxImage:
		return p, bad("patch_size %d / image_size %d out of range", p.Patch, p.Image)
	case p.Image < p.Patch:
		return p, bad("image_size %d smaller than patch_size %d", p.Image, p.Patch)
	case p.Channels <= 0 || p.Channels > 16:
		return p, bad("num_channels %d out of range", p.Channels)
	case p.Labels < 0 || p.Labels > maxLabels:
		return p, bad("num_labels %d out of range", p.Labels)
	case p.Eps <= 0 || p.Eps > 1:
		return p, bad("layer_norm_eps %g out of range", p.Eps)
	}
	return p, checkAct(c, p.Act)
}

// vitEncoderTensors adds the tensors of ViTModel's body as ViT and DeiT name
// them under pre: the token parameters (tokens, e.g. cls_token and DeiT's
// distillation_token), position embeddings for them and the patch grid, the
// patch projection, the ViTLayer stack and the final layernorm.
func (l *specList) vitEncoderTensors(pre string, p vitParams, tokens ...string) {
	for _, t := range tokens {
		l.add(pre+"embeddings."+t, 1, 1, p.Hidden)
	}
	l.add(pre+"embeddings.position_embeddings", 1, p.grid()*p.grid()+len(tokens), p.Hidden)
	l.patchProjection(pre+"embeddings.patch_embeddings.projection", p)
	for i := 0; i < p.Layers; i++ {
		l.vitLayer(fmt.Sprintf("%sencoder.layer.%d.", pre, i), p.Hidden, p.Inter, p.QKVBias)
	}
	l.norm(pre+"layernorm", p.Hidden)
}

// patchProjection adds the patch embedding's Conv2d under prefix, the
// weight and bias that builder.patchEmbed reads.
func (l *specList) patchProjection(prefix string, p vitParams) {
	l.add(prefix+".weight", p.Hidden, p.Channels, p.Patch, p.Patch)
	l.add(prefix+".bias", p.Hidden)
}

// selfAttention adds ViTAttention's tensors under prefix (as DINOv2 and
// MobileViT name them too): the query, key and value projections and the
// output dense layer that builder.selfAttention reads.
func (l *specList) selfAttention(prefix string, hidden int, qkvBias bool) {
	for _, qkv := range []string{"query", "key", "value"} {
		l.linear(prefix+".attention."+qkv, hidden, hidden, qkvBias)
	}
	l.linear(prefix+".output.dense", hidden, hidden, true)
}

// vitLayer adds a ViTLayer's tensors under b (the layer prefix, ending in
// "."): attention, intermediate and output dense layers, and the two
// LayerNorms. MobileViT's transformer layers are ViTLayers too.
func (l *specList) vitLayer(b string, hidden, inter int, qkvBias bool) {
	l.selfAttention(b+"attention", hidden, qkvBias)
	l.linear(b+"intermediate.dense", inter, hidden, true)
	l.linear(b+"output.dense", hidden, inter, true)
	l.norm(b+"layernorm_before", hidden)
	l.norm(b+"layernorm_after", hidden)
}
