package convert

// MobileViT (transformers models/mobilevit): convolutions hold most of the
// weights, so int8/int4/nf4 artifacts also store them per-output-channel int8.
func init() {
	registerArch(&Arch{Name: "MobileViTForImageClassification", Family: "mobilevit", Prefix: "mobilevit.",
		Head: []string{"classifier."}, QuantizeConvs: true, Tensors: mobilevitTensors, Graph: mobilevitGraph})
	registerArch(&Arch{Name: "MobileViTModel", Family: "mobilevit", Prefix: "", QuantizeConvs: true,
		Tensors: mobilevitTensors, Graph: mobilevitGraph})
}
