package convert

// deitGraph builds DeiTForImageClassification and
// DeiTForImageClassificationWithTeacher as transformers 4.47 computes them
// (modeling_deit.py): the encoder (vitEncoder) over cat(CLS, DIST, patches),
// then classifier(h[:,0]), or with teacher the mean of cls_classifier(h[:,0])
// and distillation_classifier(h[:,1]) as logits, with both also output.
func deitGraph(b *builder) error {
	p, err := readVitParams(b.cfg)
	if err != nil {
		return err
	}
	h, _ := b.vitEncoder(b.arch.Prefix, p, "cls_token", "distillation_token")
	L := int64(p.Labels)
	b.in("head", func() {
		switch b.arch.Name {
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
