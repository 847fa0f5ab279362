package convert

import "fmt"

// dinov2Graph builds Dinov2Model and Dinov2ForImageClassification as
// transformers 4.47 computes them (modeling_dinov2.py):
//
//	x = cat(CLS, patch_embed(pixels)) + interpolate_pos_encoding(pos)
//	per layer: x = x + ls1·attn(norm1(x)); x = x + ls2·mlp(norm2(x))
//	h = layernorm(x)
//
// Dinov2Model outputs last_hidden_state = h and pooler_output = h[:,0];
// the classifier takes cat(h[:,0], mean(h[:,1:])). mlp is fc1 → act → fc2,
// or SwiGLU (weights_in → silu(x1)·x2 → weights_out) with use_swiglu_ffn.
func dinov2Graph(b *builder) error {
	p, err := readDinov2Params(b.cfg)
	if err != nil {
		return err
	}
	pre := b.arch.Prefix
	gh, gw := b.grid(p.vitParams)
	seq := 1 + gh*gw
	var x string
	b.in("embeddings", func() {
		x = b.patchEmbed(pre+"embeddings.patch_embeddings.projection", p.vitParams)
		x = b.prependTokens(x, p.Hidden, pre+"embeddings.cls_token")
		x = b.addPosEmbed(x, pre+"embeddings.position_embeddings", 1, p.vitParams)
	})
	for i := 0; i < p.Layers; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d", pre, i)
		b.in(fmt.Sprintf("layer%d", i), func() {
			a := b.selfAttention(b.layerNorm(x, l+".norm1", p.Eps), l+".attention", seq, p.vitParams, "")
			x = b.add(b.scaleBy(a, l+".layer_scale1.lambda1"), x)
			n2 := b.layerNorm(x, l+".norm2", p.Eps)
			var y string
			b.in("mlp", func() {
				if p.SwiGLU {
					y = b.swiGLU(n2, l+".mlp", p.MLPHidden)
				} else {
					y = b.mlp(n2, l+".mlp.fc1", l+".mlp.fc2", p.Act)
				}
			})
			x = b.add(b.scaleBy(y, l+".layer_scale2.lambda1"), x)
		})
	}
	h := b.layerNorm(x, pre+"layernorm", p.Eps)
	H := int64(p.Hidden)
	b.in("head", func() {
		cls := b.gather(h, 1, 0)
		if b.arch.Name == "Dinov2ForImageClassification" {
			mean := b.reduceMean(b.slice(h, 1, 1, int64(seq)), false, 1)
			b.output("logits", b.linear(b.concat(1, cls, mean), "classifier"), int64(p.Labels))
			return
		}
		b.output("last_hidden_state", h, int64(seq), H)
		b.output("pooler_output", cls, H)
	})
	return b.err
}
