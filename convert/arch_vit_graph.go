package convert

import "fmt"

// vitGraph builds ViTForImageClassification, ViTModel (with or without
// pooler), DeiTForImageClassification and DeiTForImageClassificationWithTeacher
// as transformers 4.47 computes them (modeling_vit.py, modeling_deit.py):
//
//	x = cat(CLS, [DIST,] patch_embed(pixels)) + pos
//	per layer: x = x + attn(LN_before(x)); x = x + out(act(inter(LN_after(x))))
//	h = layernorm(x)
//
// then the head: classifier(h[:,0]) (ViT, DeiT); the mean of
// cls_classifier(h[:,0]) and distillation_classifier(h[:,1]) (DeiT with
// teacher); last_hidden_state = h and pooler_output = tanh(pooler.dense(h[:,0]))
// (ViTModel).
func vitGraph(b *builder) error {
	p, err := readVitParams(b.cfg)
	if err != nil {
		return err
	}
	pre := b.arch.Prefix
	tokens := []string{pre + "embeddings.cls_token"}
	if b.arch.Family == "deit" {
		tokens = append(tokens, pre+"embeddings.distillation_token")
	}
	gh, gw := b.grid(p)
	seq := len(tokens) + gh*gw
	var x string
	b.in("embeddings", func() {
		x = b.patchEmbed(pre+"embeddings.patch_embeddings.projection", p)
		x = b.prependTokens(x, p.Hidden, tokens...)
		x = b.addPosEmbed(x, pre+"embeddings.position_embeddings", len(tokens), p)
	})
	for i := 0; i < p.Layers; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d", pre, i)
		b.in(fmt.Sprintf("layer%d", i), func() {
			a := b.selfAttention(b.layerNorm(x, l+".layernorm_before", p.Eps), l+".attention", seq, p, "")
			x = b.add(a, x)
			y := b.mlp(b.layerNorm(x, l+".layernorm_after", p.Eps), l+".intermediate.dense", l+".output.dense", p.Act)
			x = b.add(y, x)
		})
	}
	h := b.layerNorm(x, pre+"layernorm", p.Eps)
	H, L := int64(p.Hidden), int64(p.Labels)
	b.in("head", func() {
		switch b.arch.Name {
		case "ViTModel":
			b.output("last_hidden_state", h, int64(seq), H)
			if b.w.has("pooler.dense.weight") {
				b.output("pooler_output", b.tanh(b.linear(b.gather(h, 1, 0), "pooler.dense")), H)
			}
		case "DeiTForImageClassificationWithTeacher":
			cls := b.linear(b.gather(h, 1, 0), "cls_classifier")
			dist := b.linear(b.gather(h, 1, 1), "distillation_classifier")
			b.output("logits", b.mulScalar(b.add(cls, dist), 0.5), L)
			b.output("cls_logits", cls, L)
			b.output("distillation_logits", dist, L)
		default:
			b.output("logits", b.linear(b.gather(h, 1, 0), "classifier"), L)
		}
	})
	return b.err
}
