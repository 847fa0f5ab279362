package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
)

// TestQuantizeExitCodes: the documented exit code for each bad input of
// quantize, and nothing written. None of these needs ONNX Runtime: the
// runtime is loaded only when calibration starts.
func TestQuantizeExitCodes(t *testing.T) {
	dir := t.TempDir()
	g := &onnx.Graph{Name: "g", Inputs: []*onnx.ValueInfo{onnx.TensorValue("x", onnx.Float, onnx.Symbolic("N"), onnx.Fixed(4))},
		Outputs: []*onnx.ValueInfo{onnx.TensorValue("y", onnx.Float)}}
	g.Initializers = []*onnx.Tensor{onnx.TensorF32("W", []int64{4, 2}, make([]float32, 8))}
	g.AddNode("MatMul", []string{"x", "W"}, []string{"y"})
	good := filepath.Join(dir, "good.onnx")
	if err := onnx.WriteFile(good, &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 17)}, Graph: g}, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	trunc := filepath.Join(dir, "trunc.onnx")
	os.WriteFile(trunc, b[:len(b)-7], 0o644)
	g2 := &onnx.Graph{Name: "g", Inputs: g.Inputs, Outputs: g.Outputs}
	g2.AddNode("Relu", []string{"x"}, []string{"y"})
	none := filepath.Join(dir, "none.onnx")
	onnx.WriteFile(none, &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 17)}, Graph: g2}, onnx.WriteOptions{})
	// A float64 .npy: wrong dtype for input x.
	npy := filepath.Join(dir, "x.npy")
	os.WriteFile(npy, append([]byte("\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1, 4), }"+
		string(make([]byte, 118-62-1))+"\n"), make([]byte, 32)...), 0o644)

	cases := []struct {
		name string
		args []string
		want int
	}{
		{"no output flag", []string{good}, ExitUsage},
		{"two sources", []string{good, good, "-o", "x"}, ExitUsage},
		{"bad method", []string{good, "-o", "x", "--method", "mean"}, ExitUsage},
		{"bad activation type", []string{good, "-o", "x", "--activation-type", "int4"}, ExitUsage},
		{"bad glob", []string{good, "-o", "x", "--exclude", "[a"}, ExitUsage},
		{"not onnx", []string{filepath.Join(dir, "x.npy"), "-o", "x"}, ExitUsage},
		{"truncated", []string{trunc, "-o", "x"}, ExitInvalid},
		{"nothing to quantize", []string{none, "-o", "x"}, ExitUnsupported},
		{"calibration dtype", []string{good, "-o", "x", "--calib-data", npy}, ExitUsage},
		{"bad min-cosine", []string{good, "-o", "x", "--min-cosine", "1.5"}, ExitUsage},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"quantpack", "quantize"}, c.args...)
		for i, a := range args {
			if a == "x" {
				args[i] = out
			}
		}
		if got := run(args); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: output written", c.name)
		}
	}
	if got := run([]string{"quantpack", "export", good, "-o", filepath.Join(dir, "e"), "--precision", "fp32", "--int8-mode", "static"}); got != ExitUsage {
		t.Errorf("export --int8-mode static at fp32: exit %d, want %d", got, ExitUsage)
	}
}

// TestExportStaticMinCosine: export --int8-mode static passes --min-cosine
// to quantize's accuracy-aware pass (before, export dropped the flag and
// exited 0 with no target checked); quantpack.json records the target.
func TestExportStaticMinCosine(t *testing.T) {
	requireORT(t)
	vit := repoFixture(t, "trained/vit-28")
	calib := repoFixture(t, "trained/calib")
	out := filepath.Join(t.TempDir(), "out")
	if got := run([]string{"quantpack", "export", vit, "-o", out, "--precision", "int8", "--int8-mode", "static",
		"--calib-images", calib, "--calib-samples", "16", "--min-cosine", "0.999"}); got != ExitOK {
		t.Fatalf("exit %d", got)
	}
	b, err := os.ReadFile(filepath.Join(out, "quantpack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Accuracy *struct {
			MinCosine float64 `json:"min_cosine"`
		} `json:"accuracy"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Accuracy == nil || m.Accuracy.MinCosine != 0.999 {
		t.Fatalf("quantpack.json accuracy = %+v, want the --min-cosine 0.999 target", m.Accuracy)
	}
}
