package hfconfig

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// TestConfigAccessors: typed reads with defaults, the first type error
// kept for Err, and Invalid naming the file with class Invalid.
func TestConfigAccessors(t *testing.T) {
	c, err := Parse("config.json", []byte(`{"architectures": ["ViTModel"], "model_type": "vit", "hidden_size": 32,
		"layer_norm_eps": 1e-12, "qkv_bias": true, "image_size": 2.5, "id2label": {"1": "b", "0": "a"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Architecture() != "ViTModel" || c.ModelType() != "vit" || c.Int("hidden_size", 0) != 32 ||
		c.Float("layer_norm_eps", 0) != 1e-12 || !c.Bool("qkv_bias", false) || c.Int("absent", 7) != 7 {
		t.Fatalf("accessors read %q %q %d %g", c.Architecture(), c.ModelType(), c.Int("hidden_size", 0), c.Float("layer_norm_eps", 0))
	}
	if l := c.ID2Label(); len(l) != 2 || l[0] != "a" || l[1] != "b" || c.NumLabels() != 2 {
		t.Fatalf("id2label %v, num labels %d", l, c.NumLabels())
	}
	if c.Err() != nil {
		t.Fatalf("Err before a bad read: %v", c.Err())
	}
	if got := c.Int("image_size", 224); got != 224 || !errors.Is(c.Err(), ErrConfig) {
		t.Fatalf("non-integer image_size: %d, Err %v", got, c.Err())
	}
	if err := c.Invalid("x %d", 1); !errors.Is(err, ErrConfig) || fault.ClassOf(err) != fault.Invalid {
		t.Fatalf("Invalid: %v", err)
	}
	for _, bad := range []string{``, `[]`, `null`, `{"a": }`} {
		if _, err := Parse("config.json", []byte(bad)); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", bad, err)
		}
	}
}

// TestLoadCapped: a config.json over MaxConfigBytes is refused before it
// is read.
func TestLoadCapped(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, MaxConfigBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrConfig) {
		t.Fatalf("oversized config.json: %v", err)
	}
}

// TestReadPreprocessorConfig: absent is not an error; present gets its
// class defaults (DeiT center-crops unless told otherwise).
func TestReadPreprocessorConfig(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadPreprocessorConfig(dir, "deit"); ok || err != nil {
		t.Fatalf("absent file: ok %v, err %v", ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(`{"size": 256}`), 0o644); err != nil {
		t.Fatal(err)
	}
	pc, ok, err := ReadPreprocessorConfig(dir, "deit")
	if !ok || err != nil {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	if pc.Class != "DeiTImageProcessor" || !pc.DoCenterCrop || pc.CropSize != (Size{Height: 224, Width: 224}) ||
		pc.Size != (Size{Height: 256, Width: 256}) {
		t.Fatalf("DeiT defaults not applied: %+v", pc)
	}
	if _, _, err := ReadPreprocessorConfig(dir, "swin"); !errors.Is(err, ErrUnsupportedPreprocessor) {
		t.Fatalf("no class for model_type swin: %v", err)
	}
}

// FuzzParse: config.json parsing and every accessor never panic on any
// bytes; a parsed config is a JSON object.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"architectures": ["ViTModel"], "hidden_size": 32, "id2label": {"0": "a"}}`))
	f.Add([]byte(`{"image_size": [224, 224], "num_labels": 1e300, "id2label": {"-1": "x", "9": "y"}}`))
	f.Add([]byte(`{"architectures": [], "model_type": 3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("config.json", b)
		if err != nil {
			return
		}
		if c.Raw == nil {
			t.Fatal("parsed config without members")
		}
		_ = c.Architecture()
		_ = c.ModelType()
		_ = c.Int("hidden_size", 0)
		_ = c.Ints("depths", nil)
		_ = c.ID2Label()
		_ = c.NumLabels()
		if _, err := c.Marshal(); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
