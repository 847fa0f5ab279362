package onnx

import "slices"

// MarshalWithOutputs encodes m with the values outs added as graph outputs
// (those that are not graph inputs or outputs already), so that a runtime
// returns intermediate values beside the model's outputs: a calibration
// pass reads activations this way, a per-layer comparison the layers'
// inputs and outputs. Each output's element type must be the value's (a
// runtime refuses a mismatch); shapes may be left unknown for the runtime
// to infer. m is left as it was.
func (m *Model) MarshalWithOutputs(outs []*ValueInfo) ([]byte, error) {
	g := m.Graph
	have := map[string]bool{}
	for _, v := range g.Inputs {
		have[v.Name] = true
	}
	for _, v := range g.Outputs {
		have[v.Name] = true
	}
	orig := g.Outputs
	defer func() { g.Outputs = orig }()
	g.Outputs = slices.Clone(orig)
	for _, v := range outs {
		if !have[v.Name] {
			have[v.Name] = true
			g.Outputs = append(g.Outputs, v)
		}
	}
	return m.Marshal()
}
