package convert

// MobileViT (transformers models/mobilevit): convolutions hold most of the
// weights, so int8/int4/nf4 artifacts also store them per-output-channel int8.
//
// The classifier is not a float head here, unlike the ViT families: in
// MobileViT-XXS it holds 320k of 1.27M parameters, and kept at fp16 it alone
// puts the int8 artifact at 0.33× fp32 bytes (0.27× with it quantized,
// docs/mobilevit.md). Agreement with fp32 stays within the thresholds of
// TestMobileViTPrecisions.
func init() {
	registerArch(&Arch{Name: "MobileViTForImageClassification", Family: "mobilevit", Prefix: "mobilevit.",
		QuantizeConvs: true, Tensors: mobilevitTensors, Graph: mobilevitGraph})
	registerArch(&Arch{Name: "MobileViTModel", Family: "mobilevit", Prefix: "", QuantizeConvs: true,
		Tensors: mobilevitTensors, Graph: mobilevitGraph})
}
