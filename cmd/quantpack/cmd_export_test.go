package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// writeModelDir writes a model directory with config and a safetensors
// file holding no tensors.
func writeModelDir(t *testing.T, config string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Create(filepath.Join(dir, "model.safetensors"), map[string]string{"format": "pt"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExportExitCodes: the documented exit code for each kind of bad input,
// and no output left behind.
func TestExportExitCodes(t *testing.T) {
	vit := `{"architectures": ["ViTForImageClassification"], "hidden_size": 32, "num_hidden_layers": 1,
		"num_attention_heads": 4, "intermediate_size": 64, "image_size": 32, "patch_size": 8, "num_labels": 3}`
	cases := []struct {
		name string
		cfg  string
		args []string
		want int
	}{
		{"unsupported architecture", `{"architectures": ["SwinForImageClassification"]}`, nil, ExitUnsupported},
		{"missing tensors", vit, nil, ExitInvalid},
		{"image size not a multiple of the patch", vit, []string{"--image-size", "30"}, ExitUsage},
		{"unknown precision", vit, []string{"--precision", "int3"}, ExitUsage},
		{"bad int8 mode", vit, []string{"--precision", "int8", "--int8-mode", "fast"}, ExitUsage}, // "static" is valid since issue 10
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := writeModelDir(t, c.cfg)
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"quantpack", "export", src, "-o", out}, c.args...)
			if got := run(args); got != c.want {
				t.Errorf("exit %d, want %d", got, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output left behind")
			}
		})
	}
}
