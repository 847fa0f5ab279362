package convert

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/fault"
)

// rewriteCheckpoint copies the reference checkpoint name into a new
// directory, editing its config (edit may be nil) and dropping tensors for
// which keep returns false.
func rewriteCheckpoint(t *testing.T, name string, edit func(map[string]any), keep func(string) bool) string {
	t.Helper()
	src := filepath.Join(fixtures(t), "reference", name)
	dst := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ck := openCheckpoint(t, src)
	var specs []safetensors.TensorSpec
	var entries []safetensors.Entry
	for _, e := range ck.Tensors() {
		if keep == nil || keep(e.Name) {
			specs = append(specs, safetensors.TensorSpec{Name: e.Name, DType: e.DType, Shape: e.Shape})
			entries = append(entries, e)
		}
	}
	w, err := safetensors.Create(filepath.Join(dst, "model.safetensors"), map[string]string{"format": "pt"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := readRaw(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteTensor(e.Name, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestExportBadInput: each kind of bad input fails with its class (hence
// exit code), names the tensor where there is one, and leaves no output.
func TestExportBadInput(t *testing.T) {
	const gone = "vit.encoder.layer.1.attention.attention.value.weight"
	cases := []struct {
		name   string
		src    func(t *testing.T) string
		opt    ExportOptions
		class  fault.Class
		is     error
		tensor string
	}{
		{"unknown architecture", func(t *testing.T) string {
			return rewriteCheckpoint(t, "vit", func(c map[string]any) { c["architectures"] = []string{"SwinForImageClassification"} }, nil)
		}, ExportOptions{}, fault.Unsupported, ErrUnsupported, ""},
		{"missing tensor", func(t *testing.T) string {
			return rewriteCheckpoint(t, "vit", nil, func(n string) bool { return n != gone })
		}, ExportOptions{}, fault.Invalid, ErrMissing, gone},
		{"config inconsistent with shapes", func(t *testing.T) string {
			return rewriteCheckpoint(t, "vit", func(c map[string]any) { c["intermediate_size"] = 48 }, nil)
		}, ExportOptions{}, fault.Invalid, ErrTensorShape, "vit.encoder.layer.0.intermediate.dense.weight"},
		{"image size not a multiple of the patch", func(t *testing.T) string {
			return filepath.Join(fixtures(t), "reference", "vit")
		}, ExportOptions{ImageSize: 30}, fault.Usage, ErrImageSize, ""},
		{"config image size not a multiple of the patch", func(t *testing.T) string {
			dir := rewriteCheckpoint(t, "dinov2", nil, nil)
			pc := `{"do_center_crop": true, "crop_size": {"height": 50, "width": 50}}`
			if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(pc), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ExportOptions{ImageSize: 0}, fault.Invalid, ErrConfig, ""},
		{"bad int8 mode", func(t *testing.T) string {
			return filepath.Join(fixtures(t), "reference", "vit")
		}, ExportOptions{Int8Mode: "static"}, fault.Usage, nil, ""},
		{"bad opset", func(t *testing.T) string {
			return filepath.Join(fixtures(t), "reference", "vit")
		}, ExportOptions{Opset: 11}, fault.Usage, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src(t)
			out := filepath.Join(t.TempDir(), "out")
			_, err := Export(context.Background(), src, out, c.opt)
			if err == nil {
				t.Fatal("export succeeded")
			}
			if got := fault.ClassOf(err); got != c.class {
				t.Errorf("class %v, want %v (%v)", got, c.class, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if c.tensor != "" {
				var te *TensorError
				if !errors.As(err, &te) || te.Tensor != c.tensor {
					t.Errorf("error %v does not name tensor %q", err, c.tensor)
				}
			}
			if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("output left behind after failure: %v", serr)
			}
			ents, _ := os.ReadDir(filepath.Dir(out))
			if len(ents) != 0 {
				t.Errorf("temporary files left beside the output: %v", ents)
			}
		})
	}
}

// TestExportArtifactRules: an artifact exports only at its own precision,
// and a manifest that is not a convert artifact's is rejected as invalid.
func TestExportArtifactRules(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	art := filepath.Join(t.TempDir(), "int8")
	if _, err := Convert(context.Background(), src, art, Options{Precision: Int8, NoStats: true}); err != nil {
		t.Fatal(err)
	}
	_, err := Export(context.Background(), art, filepath.Join(t.TempDir(), "o"), ExportOptions{Precision: ExportInt4})
	if !errors.Is(err, ErrPrecisionMix) || fault.ClassOf(err) != fault.Usage {
		t.Errorf("int8 artifact at int4: %v", err)
	}
	m, err := Export(context.Background(), art, filepath.Join(t.TempDir(), "o"), ExportOptions{})
	if err != nil || m.Precision != ExportInt8 || m.Source.Kind != "artifact" || len(m.Source.Files) == 0 {
		t.Errorf("int8 artifact at its own precision: %+v, %v", m, err)
	}
	bad := rewriteCheckpoint(t, "vit", nil, nil)
	if err := os.WriteFile(filepath.Join(bad, "quantpack.json"), []byte(`{"format":"quantpack-onnx/1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Export(context.Background(), bad, filepath.Join(t.TempDir(), "o"), ExportOptions{})
	if !errors.Is(err, ErrArtifact) || fault.ClassOf(err) != fault.Invalid {
		t.Errorf("foreign quantpack.json: %v", err)
	}
	busy := t.TempDir()
	if err := os.WriteFile(filepath.Join(busy, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(context.Background(), src, busy, ExportOptions{}); !errors.Is(err, ErrOutputExists) {
		t.Errorf("non-empty output: %v", err)
	}
}
