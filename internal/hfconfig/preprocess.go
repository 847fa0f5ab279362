package hfconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/internal/safeio"
)

// Size is a "size" or "crop_size" entry of preprocessor_config.json after
// transformers' get_size_dict: either Height and Width, or ShortestEdge
// (the short side is scaled to it, keeping the aspect ratio).
type Size struct {
	Height       int `json:"height,omitempty"`
	Width        int `json:"width,omitempty"`
	ShortestEdge int `json:"shortest_edge,omitempty"`
}

// PreprocessorConfig is a Hugging Face image processor's settings, with the
// class defaults filled in and the keys that class ignores left out. The
// steps run in transformers' order: convert to RGB, resize, center crop
// (padding with zeros when the crop is larger), rescale, normalize, flip
// channel order.
type PreprocessorConfig struct {
	// Class is the transformers class whose behaviour is reproduced, e.g.
	// "BitImageProcessor" (a "...Fast" or "...FeatureExtractor" name in the
	// file maps to the same class; see Preprocessor for what that implies).
	Class              string     `json:"class"`
	DoResize           bool       `json:"do_resize"`
	Size               Size       `json:"size"`
	Resample           Resample   `json:"resample"`
	DoCenterCrop       bool       `json:"do_center_crop"`
	CropSize           Size       `json:"crop_size"`
	DoRescale          bool       `json:"do_rescale"`
	RescaleFactor      float64    `json:"rescale_factor"`
	DoNormalize        bool       `json:"do_normalize"`
	ImageMean          [3]float64 `json:"image_mean"`
	ImageStd           [3]float64 `json:"image_std"`
	DoFlipChannelOrder bool       `json:"do_flip_channel_order"`
	// Source is the file the settings came from, or a note saying they are
	// defaults and for which model type.
	Source string `json:"source"`
}

// MaxPreprocessorBytes caps preprocessor_config.json reads; real ones are
// under 1 KiB.
const MaxPreprocessorBytes = 1 << 20

// MaxSide caps any size in a config: larger than any model input and small
// enough that sizes multiply without overflow.
const MaxSide = 1 << 15

// transformers' normalization constants (image_utils.py).
var (
	ImageNetStandardMean = [3]float64{0.5, 0.5, 0.5}
	ImageNetStandardStd  = [3]float64{0.5, 0.5, 0.5}
	ImageNetDefaultMean  = [3]float64{0.485, 0.456, 0.406}
	ImageNetDefaultStd   = [3]float64{0.229, 0.224, 0.225}
	OpenAICLIPMean       = [3]float64{0.48145466, 0.4578275, 0.40821073}
	OpenAICLIPStd        = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// processorClass is what one transformers image processor class accepts
// and defaults to (its __init__ signature; other keys go to **kwargs and are
// ignored, so a "do_center_crop" in a ViTImageProcessor file has no effect).
type processorClass struct {
	keys map[string]bool
	// sizeSquare is get_size_dict's default_to_square for "size": an int
	// means height=width=n when true, shortest_edge=n when false.
	sizeSquare bool
	// heightWidthOnly: the class's resize reads size["height"] and
	// size["width"] and fails on a shortest_edge size.
	heightWidthOnly bool
	defaults        PreprocessorConfig
}

func keySet(k ...string) map[string]bool {
	m := make(map[string]bool, len(k))
	for _, s := range k {
		m[s] = true
	}
	return m
}

// processorClasses holds the defaults of each supported class as its
// __init__ sets them in transformers (models/<name>/image_processing_<name>.py).
// resize256Crop224 is the class defaults DeiTImageProcessor and
// BeitImageProcessor share in transformers: bicubic resize to 256×256, centre
// crop to 224×224, ImageNet "standard" mean and std.
var resize256Crop224 = processorClass{
	keys:            keySet("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std"),
	sizeSquare:      true,
	heightWidthOnly: true,
	defaults: PreprocessorConfig{DoResize: true, Size: Size{Height: 256, Width: 256}, Resample: ResampleBicubic,
		DoCenterCrop: true, CropSize: Size{Height: 224, Width: 224},
		DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true, ImageMean: ImageNetStandardMean, ImageStd: ImageNetStandardStd},
}

var processorClasses = map[string]processorClass{
	"ViTImageProcessor": {
		keys:            keySet("do_resize", "size", "resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std"),
		sizeSquare:      true,
		heightWidthOnly: true,
		defaults: PreprocessorConfig{DoResize: true, Size: Size{Height: 224, Width: 224}, Resample: ResampleBilinear,
			DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true, ImageMean: ImageNetStandardMean, ImageStd: ImageNetStandardStd},
	},
	"DeiTImageProcessor": resize256Crop224,
	"BeitImageProcessor": resize256Crop224,
	"BitImageProcessor": {
		keys:       keySet("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std"),
		sizeSquare: false,
		defaults: PreprocessorConfig{DoResize: true, Size: Size{ShortestEdge: 224}, Resample: ResampleBicubic,
			DoCenterCrop: true, CropSize: Size{Height: 224, Width: 224},
			DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true, ImageMean: OpenAICLIPMean, ImageStd: OpenAICLIPStd},
	},
	"MobileViTImageProcessor": {
		keys:       keySet("do_resize", "size", "resample", "do_rescale", "rescale_factor", "do_center_crop", "crop_size", "do_flip_channel_order"),
		sizeSquare: false,
		defaults: PreprocessorConfig{DoResize: true, Size: Size{ShortestEdge: 224}, Resample: ResampleBilinear,
			DoRescale: true, RescaleFactor: 1.0 / 255, DoCenterCrop: true, CropSize: Size{Height: 256, Width: 256},
			DoFlipChannelOrder: true},
	},
}

// modelTypeClass maps config.json's model_type to the processor class its
// checkpoints use (DINOv2 ships BitImageProcessor).
var modelTypeClass = map[string]string{
	"vit":       "ViTImageProcessor",
	"deit":      "DeiTImageProcessor",
	"beit":      "BeitImageProcessor",
	"dinov2":    "BitImageProcessor",
	"mobilevit": "MobileViTImageProcessor",
}

// SupportedProcessorClasses lists the classes ParsePreprocessorConfig
// reproduces.
func SupportedProcessorClasses() []string {
	s := make([]string, 0, len(processorClasses))
	for k := range processorClasses {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// canonicalClass maps "ViTImageProcessorFast" and legacy
// "ViTFeatureExtractor" to "ViTImageProcessor".
func canonicalClass(name string) string {
	name = strings.TrimSuffix(name, "Fast")
	if s, ok := strings.CutSuffix(name, "FeatureExtractor"); ok {
		name = s + "ImageProcessor"
	}
	return name
}

// ParsePreprocessorConfig reads a preprocessor_config.json. The class comes
// from "image_processor_type", else "feature_extractor_type", else
// modelType (config.json's model_type; may be empty when the file names its
// class). path is used in errors only.
func ParsePreprocessorConfig(path string, data []byte, modelType string) (PreprocessorConfig, error) {
	bad := func(key string, err error) error {
		return &ConfigError{Path: path, Key: key, Kind: ErrBadPreprocessor, Err: err}
	}
	unsupported := func(key string, err error) error {
		return &ConfigError{Path: path, Key: key, Kind: ErrUnsupportedPreprocessor, Err: err}
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return PreprocessorConfig{}, bad("", err)
	}
	if raw == nil {
		return PreprocessorConfig{}, bad("", errors.New("not a JSON object"))
	}
	if _, err := dec.Token(); err != io.EOF {
		return PreprocessorConfig{}, bad("", errors.New("data after the JSON object"))
	}

	className := ""
	for _, k := range []string{"image_processor_type", "feature_extractor_type"} {
		if v, ok := raw[k]; ok {
			if err := json.Unmarshal(v, &className); err != nil {
				return PreprocessorConfig{}, bad(k, err)
			}
			break
		}
	}
	if className == "" {
		if c, ok := modelTypeClass[modelType]; ok {
			className = c
		} else {
			return PreprocessorConfig{}, unsupported("image_processor_type",
				fmt.Errorf("no processor class in the file and model_type %q has no default; supported: %s",
					modelType, strings.Join(SupportedProcessorClasses(), ", ")))
		}
	}
	canon := canonicalClass(className)
	cls, ok := processorClasses[canon]
	if !ok {
		return PreprocessorConfig{}, unsupported("image_processor_type",
			fmt.Errorf("%q; supported: %s", className, strings.Join(SupportedProcessorClasses(), ", ")))
	}
	cfg := cls.defaults
	cfg.Class = canon
	cfg.Source = path

	for key, v := range raw {
		if !cls.keys[key] || string(v) == "null" { // null means "class default" in transformers
			continue
		}
		var err error
		switch key {
		case "do_resize":
			err = json.Unmarshal(v, &cfg.DoResize)
		case "do_center_crop":
			err = json.Unmarshal(v, &cfg.DoCenterCrop)
		case "do_rescale":
			err = json.Unmarshal(v, &cfg.DoRescale)
		case "do_normalize":
			err = json.Unmarshal(v, &cfg.DoNormalize)
		case "do_flip_channel_order":
			err = json.Unmarshal(v, &cfg.DoFlipChannelOrder)
		case "resample":
			var r int
			if err = json.Unmarshal(v, &r); err == nil && !Resample(r).Valid() {
				err = fmt.Errorf("%d is not a Pillow filter code (0..5)", r)
			}
			cfg.Resample = Resample(r)
		case "rescale_factor":
			err = json.Unmarshal(v, &cfg.RescaleFactor)
		case "image_mean":
			cfg.ImageMean, err = parseChannelValues(v)
		case "image_std":
			cfg.ImageStd, err = parseChannelValues(v)
		case "size":
			cfg.Size, err = parseSize(v, cls.sizeSquare)
		case "crop_size":
			cfg.CropSize, err = parseSize(v, true)
		}
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				ce.Path, ce.Key = path, key
				return PreprocessorConfig{}, ce
			}
			return PreprocessorConfig{}, bad(key, err)
		}
	}
	if err := cfg.validate(cls); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return PreprocessorConfig{}, err
	}
	return cfg, nil
}

// parseChannelValues reads image_mean/image_std: three numbers, or one that
// normalize() repeats for every channel.
func parseChannelValues(v json.RawMessage) ([3]float64, error) {
	var one float64
	if err := json.Unmarshal(v, &one); err == nil {
		return [3]float64{one, one, one}, nil
	}
	var list []float64
	if err := json.Unmarshal(v, &list); err != nil {
		return [3]float64{}, err
	}
	if len(list) != 3 {
		return [3]float64{}, fmt.Errorf("%d values for 3 channels", len(list))
	}
	return [3]float64{list[0], list[1], list[2]}, nil
}

// parseSize is transformers' get_size_dict for the forms image processors
// use: an int (square, or shortest_edge when square is false), a [h, w]
// list, or a dict with height+width or shortest_edge.
func parseSize(v json.RawMessage, square bool) (Size, error) {
	var n int
	if err := json.Unmarshal(v, &n); err == nil {
		if square {
			return Size{Height: n, Width: n}, nil
		}
		return Size{ShortestEdge: n}, nil
	}
	var list []int
	if err := json.Unmarshal(v, &list); err == nil {
		switch len(list) {
		case 2:
			return Size{Height: list[0], Width: list[1]}, nil
		case 1:
			if square {
				return Size{Height: list[0], Width: list[0]}, nil
			}
			return Size{ShortestEdge: list[0]}, nil
		}
		return Size{}, fmt.Errorf("%d values, want 1 or 2", len(list))
	}
	var m map[string]int
	if err := json.Unmarshal(v, &m); err != nil {
		return Size{}, fmt.Errorf("want an int, [height, width] or an object of ints: %w", err)
	}
	h, hasH := m["height"]
	w, hasW := m["width"]
	se, hasSE := m["shortest_edge"]
	_, hasLE := m["longest_edge"]
	switch {
	case hasH && hasW && len(m) == 2:
		return Size{Height: h, Width: w}, nil
	case hasSE && len(m) == 1:
		return Size{ShortestEdge: se}, nil
	case hasLE:
		return Size{}, &ConfigError{Kind: ErrUnsupportedPreprocessor, Err: errors.New("longest_edge sizes are not supported")}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return Size{}, fmt.Errorf("keys %v: want height+width or shortest_edge", keys)
}

func (s Size) validSide(v int) bool { return v >= 1 && v <= MaxSide }

func (s Size) check(allowShortest bool) error {
	if s.ShortestEdge != 0 {
		if !allowShortest {
			return errors.New("this class resizes to height×width; shortest_edge is not accepted")
		}
		if !s.validSide(s.ShortestEdge) {
			return fmt.Errorf("shortest_edge %d outside 1..%d", s.ShortestEdge, MaxSide)
		}
		return nil
	}
	if !s.validSide(s.Height) || !s.validSide(s.Width) {
		return fmt.Errorf("%d×%d outside 1..%d", s.Height, s.Width, MaxSide)
	}
	return nil
}

// Validate checks c as its Class would (any size form when the class is
// not one ParsePreprocessorConfig knows, e.g. a hand-made config).
func (c *PreprocessorConfig) Validate() error {
	return c.validate(processorClasses[c.Class])
}

func (c *PreprocessorConfig) validate(cls processorClass) error {
	bad := func(key string, err error) error {
		return &ConfigError{Key: key, Kind: ErrBadPreprocessor, Err: err}
	}
	if c.DoResize {
		if err := c.Size.check(!cls.heightWidthOnly); err != nil {
			return bad("size", err)
		}
		if !c.Resample.Valid() {
			return bad("resample", fmt.Errorf("%d is not a Pillow filter code", int(c.Resample)))
		}
	}
	if c.DoCenterCrop {
		if err := c.CropSize.check(false); err != nil {
			return bad("crop_size", err)
		}
	}
	if c.DoRescale && (math.IsNaN(c.RescaleFactor) || math.IsInf(c.RescaleFactor, 0)) {
		return bad("rescale_factor", fmt.Errorf("%v", c.RescaleFactor))
	}
	if c.DoNormalize {
		for i := range 3 {
			m, s := c.ImageMean[i], c.ImageStd[i]
			if math.IsNaN(m) || math.IsInf(m, 0) {
				return bad("image_mean", fmt.Errorf("channel %d: %v", i, m))
			}
			if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) || float32(s) == 0 {
				return bad("image_std", fmt.Errorf("channel %d: %v", i, s))
			}
		}
	}
	return nil
}

// DefaultPreprocessorConfig is used when a model directory has no
// preprocessor_config.json. It follows the published preprocessor configs
// of the seed study's checkpoints (google/vit-base-patch16-224,
// facebook/deit-base-distilled-patch16-224, microsoft/beit-base-patch16-224,
// facebook/dinov2-base, apple/mobilevit-small), which differ from the bare
// class defaults for DeiT (ImageNet mean/std), BEiT (224, no crop,
// bilinear), DINOv2 (256→224, ImageNet mean/std) and MobileViT (288→256),
// with the crop (or resize, without a crop) set to config.json's image_size
// and the resize scaled in the same proportion, rounded to nearest.
func DefaultPreprocessorConfig(modelType string, imageSize int) (PreprocessorConfig, error) {
	if imageSize < 1 || imageSize > MaxSide {
		return PreprocessorConfig{}, &ConfigError{Path: "config.json", Key: "image_size", Kind: ErrBadPreprocessor,
			Err: fmt.Errorf("%d outside 1..%d", imageSize, MaxSide)}
	}
	scaled := func(num, den int) int { return int(math.Round(float64(imageSize) * float64(num) / float64(den))) }
	sq := Size{Height: imageSize, Width: imageSize}
	className, ok := modelTypeClass[modelType]
	if !ok {
		known := make([]string, 0, len(modelTypeClass))
		for k := range modelTypeClass {
			known = append(known, k)
		}
		sort.Strings(known)
		return PreprocessorConfig{}, &ConfigError{Path: "config.json", Key: "model_type", Kind: ErrUnsupportedPreprocessor,
			Err: fmt.Errorf("no preprocessor_config.json and no default for model_type %q (defaults exist for %s)", modelType, strings.Join(known, ", "))}
	}
	c := processorClasses[className].defaults
	c.Class = className
	switch modelType {
	case "vit":
		c.Size = sq
	case "deit":
		c.Size = Size{Height: scaled(256, 224), Width: scaled(256, 224)}
		c.CropSize = sq
		c.ImageMean, c.ImageStd = ImageNetDefaultMean, ImageNetDefaultStd
	case "beit":
		c.Size = sq
		c.DoCenterCrop = false
		c.Resample = ResampleBilinear
	case "dinov2":
		c.Size = Size{ShortestEdge: scaled(256, 224)}
		c.CropSize = sq
		c.ImageMean, c.ImageStd = ImageNetDefaultMean, ImageNetDefaultStd
	case "mobilevit":
		c.Size = Size{ShortestEdge: scaled(288, 256)}
		c.CropSize = sq
	}
	c.Source = fmt.Sprintf("defaults for model_type %s, image_size %d (no preprocessor_config.json)", modelType, imageSize)
	return c, nil
}

// ReadCapped reads a whole small file, refusing one over limit bytes.
func ReadCapped(path string, limit int64) ([]byte, error) {
	// safeio refuses non-regular files (a FIFO would block, /dev/zero
	// would never end) before opening them, and caps what it reads.
	return safeio.ReadFile(path, limit)
}

// ReadPreprocessorConfig reads dir/preprocessor_config.json with the class
// defaults of modelType's processor filled in (see ParsePreprocessorConfig).
// ok is false, with no error, when the file does not exist.
func ReadPreprocessorConfig(dir, modelType string) (cfg PreprocessorConfig, ok bool, err error) {
	p := filepath.Join(dir, "preprocessor_config.json")
	data, err := ReadCapped(p, MaxPreprocessorBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return PreprocessorConfig{}, false, nil
	}
	if err != nil {
		return PreprocessorConfig{}, false, err
	}
	cfg, err = ParsePreprocessorConfig(p, data, modelType)
	return cfg, err == nil, err
}

// LoadPreprocessorConfig reads dir/preprocessor_config.json, or, when it is
// missing, builds DefaultPreprocessorConfig from dir/config.json's
// model_type and image_size.
func LoadPreprocessorConfig(dir string) (PreprocessorConfig, error) {
	cfgPath := filepath.Join(dir, "config.json")
	mc, cfgErr := LoadFile(cfgPath)
	if cfgErr != nil && !errors.Is(cfgErr, fs.ErrNotExist) {
		return PreprocessorConfig{}, cfgErr
	}
	modelType := ""
	if mc != nil {
		modelType = mc.ModelType()
	}
	pc, ok, err := ReadPreprocessorConfig(dir, modelType)
	if ok || err != nil {
		return pc, err
	}
	if mc == nil {
		return PreprocessorConfig{}, fmt.Errorf("%s has neither preprocessor_config.json nor config.json: %w", dir, cfgErr)
	}
	size, err := imageSizeOf(mc.Raw["image_size"])
	if err != nil {
		return PreprocessorConfig{}, &ConfigError{Path: cfgPath, Key: "image_size", Kind: ErrBadPreprocessor, Err: err}
	}
	return DefaultPreprocessorConfig(modelType, size)
}

// imageSizeOf reads config.json's image_size: an int, or [h, w] with h == w
// (the defaults are square).
func imageSizeOf(v json.RawMessage) (int, error) {
	if len(v) == 0 {
		return 0, errors.New("missing")
	}
	var n int
	if err := json.Unmarshal(v, &n); err == nil {
		return n, nil
	}
	var hw []int
	if err := json.Unmarshal(v, &hw); err != nil {
		return 0, err
	}
	if len(hw) != 2 || hw[0] != hw[1] {
		return 0, fmt.Errorf("%v: want an int or a square [h, w]", hw)
	}
	return hw[0], nil
}
