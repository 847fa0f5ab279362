package convert

// vitGraph builds ViTForImageClassification and ViTModel (with or without
// pooler) as transformers 4.47 computes them (modeling_vit.py): the encoder
// (vitEncoder) over cat(CLS, patches), then classifier(h[:,0]), or for
// ViTModel last_hidden_state = h and pooler_output = tanh(pooler.dense(h[:,0])).
func vitGraph(b *builder) error {
	p, err := readVitParams(b.cfg)
	if err != nil {
		return err
	}
	h, seq := b.vitEncoder(b.arch.Prefix, p, "cls_token")
	H, L := int64(p.Hidden), int64(p.Labels)
	b.in("head", func() {
		switch b.arch.Name {
		case "ViTModel":
			b.output("last_hidden_state", h, int64(seq), H)
			if b.w.has("pooler.dense.weight") {
				b.output("pooler_output", b.tanh(b.linear(b.gather(h, 1, 0), "pooler.dense")), H)
			}
		default:
			b.output("logits", b.linear(b.gather(h, 1, 0), "classifier"), L)
		}
	})
	return b.err
}
