package verify

import (
	"errors"
	"github.com/quantpack/quantpack/internal/hfconfig"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

func TestParsePreprocessorConfigForms(t *testing.T) {
	cases := []struct {
		name, json, modelType string
		check                 func(t *testing.T, c PreprocessorConfig)
	}{
		{"dinov2 hub", `{"crop_size":{"height":224,"width":224},"do_center_crop":true,"do_convert_rgb":true,
			"do_normalize":true,"do_rescale":true,"do_resize":true,"image_mean":[0.485,0.456,0.406],
			"image_processor_type":"BitImageProcessor","image_std":[0.229,0.224,0.225],"resample":3,
			"rescale_factor":0.00392156862745098,"size":{"shortest_edge":256}}`, "", func(t *testing.T, c PreprocessorConfig) {
			want := PreprocessorConfig{Class: "BitImageProcessor", DoResize: true, Size: Size{ShortestEdge: 256}, Resample: ResampleBicubic,
				DoCenterCrop: true, CropSize: Size{Height: 224, Width: 224}, DoRescale: true, RescaleFactor: 0.00392156862745098,
				DoNormalize: true, ImageMean: hfconfig.ImageNetDefaultMean, ImageStd: hfconfig.ImageNetDefaultStd}
			c.Source = ""
			if c != want {
				t.Errorf("got %+v\nwant %+v", c, want)
			}
		}},
		{"deit legacy int size is square", `{"feature_extractor_type":"DeiTFeatureExtractor","size":256,"crop_size":224}`, "", func(t *testing.T, c PreprocessorConfig) {
			if c.Class != "DeiTImageProcessor" || c.Size != (Size{Height: 256, Width: 256}) || c.CropSize != (Size{Height: 224, Width: 224}) {
				t.Errorf("%+v", c)
			}
			if c.Resample != ResampleBicubic || c.ImageMean != hfconfig.ImageNetStandardMean { // class defaults
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{"mobilevit legacy int size is shortest edge", `{"feature_extractor_type":"MobileViTFeatureExtractor","size":288,"crop_size":256,"do_normalize":true}`, "", func(t *testing.T, c PreprocessorConfig) {
			if c.Size != (Size{ShortestEdge: 288}) || !c.DoFlipChannelOrder {
				t.Errorf("%+v", c)
			}
			if c.DoNormalize { // not an argument of MobileViTImageProcessor: ignored
				t.Error("do_normalize taken for MobileViT, whose processor ignores it")
			}
		}},
		{"vit ignores crop keys", `{"image_processor_type":"ViTImageProcessor","do_center_crop":true,"crop_size":10,"size":{"height":384,"width":384}}`, "", func(t *testing.T, c PreprocessorConfig) {
			if c.DoCenterCrop || c.Size != (Size{Height: 384, Width: 384}) || c.Resample != ResampleBilinear {
				t.Errorf("%+v", c)
			}
		}},
		{"fast suffix and scalar mean", `{"image_processor_type":"ViTImageProcessorFast","image_mean":0.25,"image_std":[1,2,4]}`, "", func(t *testing.T, c PreprocessorConfig) {
			if c.Class != "ViTImageProcessor" || c.ImageMean != [3]float64{0.25, 0.25, 0.25} || c.ImageStd != [3]float64{1, 2, 4} {
				t.Errorf("%+v", c)
			}
		}},
		{"class from model_type", `{"size":300}`, "dinov2", func(t *testing.T, c PreprocessorConfig) {
			if c.Class != "BitImageProcessor" || c.Size != (Size{ShortestEdge: 300}) {
				t.Errorf("%+v", c)
			}
		}},
		{"list size is height width", `{"image_processor_type":"BeitImageProcessor","size":[200,300],"resample":null}`, "", func(t *testing.T, c PreprocessorConfig) {
			if c.Size != (Size{Height: 200, Width: 300}) || c.Resample != ResampleBicubic {
				t.Errorf("%+v", c)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParsePreprocessorConfig("p.json", []byte(tc.json), tc.modelType)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParsePreprocessorConfigErrors(t *testing.T) {
	cases := []struct {
		name, json, modelType string
		kind                  error
		key                   string
	}{
		{"not json", `{"size":`, "vit", ErrBadPreprocessor, ""},
		{"array", `[1,2]`, "vit", ErrBadPreprocessor, ""},
		{"trailing data", `{} {}`, "vit", ErrBadPreprocessor, ""},
		{"unknown class", `{"image_processor_type":"ConvNextImageProcessor"}`, "", ErrUnsupportedPreprocessor, "image_processor_type"},
		{"no class, unknown model", `{"size":224}`, "swin", ErrUnsupportedPreprocessor, "image_processor_type"},
		{"zero size", `{"image_processor_type":"ViTImageProcessor","size":0}`, "", ErrBadPreprocessor, "size"},
		{"huge size", `{"image_processor_type":"ViTImageProcessor","size":1000000}`, "", ErrBadPreprocessor, "size"},
		{"shortest edge for ViT", `{"image_processor_type":"ViTImageProcessor","size":{"shortest_edge":224}}`, "", ErrBadPreprocessor, "size"},
		{"longest edge", `{"image_processor_type":"BitImageProcessor","size":{"longest_edge":224}}`, "", ErrUnsupportedPreprocessor, "size"},
		{"odd size keys", `{"image_processor_type":"BitImageProcessor","size":{"height":224}}`, "", ErrBadPreprocessor, "size"},
		{"bad resample", `{"image_processor_type":"BitImageProcessor","resample":7}`, "", ErrBadPreprocessor, "resample"},
		{"zero std", `{"image_processor_type":"BitImageProcessor","image_std":[0.2,0,0.2]}`, "", ErrBadPreprocessor, "image_std"},
		{"two means", `{"image_processor_type":"BitImageProcessor","image_mean":[0.2,0.3]}`, "", ErrBadPreprocessor, "image_mean"},
		{"string bool", `{"image_processor_type":"BitImageProcessor","do_resize":"yes"}`, "", ErrBadPreprocessor, "do_resize"},
		{"crop zero", `{"image_processor_type":"DeiTImageProcessor","crop_size":{"height":0,"width":2}}`, "", ErrBadPreprocessor, "crop_size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePreprocessorConfig("dir/preprocessor_config.json", []byte(tc.json), tc.modelType)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Path != "dir/preprocessor_config.json" || ce.Key != tc.key {
				t.Fatalf("err = %#v, want a ConfigError naming the file and key %q", err, tc.key)
			}
			want := fault.Invalid
			if tc.kind == ErrUnsupportedPreprocessor {
				want = fault.Unsupported
			}
			if fault.ClassOf(err) != want {
				t.Errorf("class %v, want %v", fault.ClassOf(err), want)
			}
		})
	}
}

func TestDefaultPreprocessorConfig(t *testing.T) {
	c, err := DefaultPreprocessorConfig("deit", 224)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != (Size{Height: 256, Width: 256}) || c.CropSize != (Size{Height: 224, Width: 224}) || c.ImageMean != hfconfig.ImageNetDefaultMean {
		t.Errorf("deit 224: %+v", c)
	}
	c, _ = DefaultPreprocessorConfig("dinov2", 224)
	if c.Size != (Size{ShortestEdge: 256}) || c.Resample != ResampleBicubic {
		t.Errorf("dinov2 224: %+v", c)
	}
	c, _ = DefaultPreprocessorConfig("mobilevit", 256)
	if c.Size != (Size{ShortestEdge: 288}) || !c.DoFlipChannelOrder || c.DoNormalize {
		t.Errorf("mobilevit 256: %+v", c)
	}
	c, _ = DefaultPreprocessorConfig("beit", 224)
	if c.DoCenterCrop || c.Size != (Size{Height: 224, Width: 224}) || c.Resample != ResampleBilinear {
		t.Errorf("beit 224: %+v", c)
	}
	if _, err := DefaultPreprocessorConfig("swin", 224); !errors.Is(err, ErrUnsupportedPreprocessor) {
		t.Errorf("swin: %v", err)
	}
	if _, err := DefaultPreprocessorConfig("vit", 0); !errors.Is(err, ErrBadPreprocessor) {
		t.Errorf("image_size 0: %v", err)
	}
}

// TestLoadPreprocessorReferenceCheckpoints: the reference fixtures ship
// config.json only, so each gets the defaults for its model type at its
// image_size, and the output is the size the reference inputs have.
func TestLoadPreprocessorReferenceCheckpoints(t *testing.T) {
	ref := fixtureDir(t, "reference")
	want := map[string][2]int{"vit": {32, 32}, "deit": {32, 32}, "deit-distilled": {32, 32}, "beit": {32, 32}, "mobilevit": {64, 64}, "dinov2-cls": {0, 0}}
	for name, hw := range want {
		dir := filepath.Join(ref, name)
		if _, err := os.Stat(filepath.Join(dir, "preprocessor_config.json")); err == nil {
			t.Logf("%s now ships a preprocessor_config.json", name)
		}
		p, err := LoadPreprocessor(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if hw[0] == 0 {
			continue // size checked only where the README states the input size
		}
		h, w, ok := p.FixedSize()
		if !ok || h != hw[0] || w != hw[1] {
			t.Errorf("%s: output %dx%d (fixed %v), want %dx%d", name, h, w, ok, hw[0], hw[1])
		}
	}
}

func TestLoadPreprocessorMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPreprocessor(dir); err == nil {
		t.Fatal("empty directory accepted")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"vit","image_size":[384,384]}`), 0o644)
	p, err := LoadPreprocessor(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h, w, _ := p.FixedSize(); h != 384 || w != 384 {
		t.Errorf("%dx%d", h, w)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"vit"}`), 0o644)
	if _, err := LoadPreprocessor(dir); !errors.Is(err, ErrBadPreprocessor) {
		t.Errorf("no image_size: %v", err)
	}
}

func TestOutputSizeShortestEdge(t *testing.T) {
	// transformers: int(s * long / short), truncating; the short side is s.
	p, err := NewPreprocessor(PreprocessorConfig{Class: "BitImageProcessor", DoResize: true, Size: Size{ShortestEdge: 256}, Resample: ResampleBicubic})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ w, h, wantW, wantH int }{
		{640, 480, 341, 256}, // 256·640/480 = 341.33
		{480, 640, 256, 341},
		{451, 300, 384, 256}, // 384.85 → 384
		{300, 300, 256, 256},
		{1, 1000, 256, 256000},
	} {
		oh, ow := p.OutputSize(tc.w, tc.h)
		if ow != tc.wantW || oh != tc.wantH {
			t.Errorf("%dx%d → %dx%d, want %dx%d", tc.w, tc.h, ow, oh, tc.wantW, tc.wantH)
		}
	}
	if _, _, ok := p.FixedSize(); ok {
		t.Error("shortest_edge without crop reported a fixed size")
	}
}
