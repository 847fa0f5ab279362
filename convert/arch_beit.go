package convert

// BEiT (transformers models/beit): relative position bias per layer (or
// shared), layer scale lambda_1/lambda_2, key without bias, mean pooling of
// patch tokens followed by pooler.layernorm.
func init() {
	registerArch(&Arch{Name: "BeitForImageClassification", Family: "beit", Prefix: "beit.", Head: []string{"classifier."}, Tensors: noPooler(beitTensors), Graph: beitGraph})
}
