package onnx

import "testing"

// TestMarshalWithOutputs: the named values become graph outputs with their
// element types, once each, after the model's own; names that are already
// graph inputs or outputs are not repeated; the model itself is unchanged.
func TestMarshalWithOutputs(t *testing.T) {
	m := sampleModel()
	g := m.Graph
	if len(g.Inputs) == 0 || len(g.Outputs) == 0 {
		t.Fatal("sample model has no inputs or outputs")
	}
	before := len(g.Outputs)
	in, out := g.Inputs[0].Name, g.Outputs[0].Name
	b, err := m.MarshalWithOutputs([]*ValueInfo{{Name: "a", ElemType: Float}, {Name: in, ElemType: Float},
		{Name: "h", ElemType: Float16}, {Name: out, ElemType: Float}, {Name: "a", ElemType: Float}})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Outputs) != before {
		t.Fatalf("the model's outputs changed: %d, had %d", len(g.Outputs), before)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got := back.Graph.Outputs
	if len(got) != before+2 {
		t.Fatalf("%d outputs, want %d + 2", len(got), before)
	}
	if got[before].Name != "a" || got[before].ElemType != Float || got[before+1].Name != "h" || got[before+1].ElemType != Float16 {
		t.Fatalf("added outputs %+v, %+v", got[before], got[before+1])
	}
}
