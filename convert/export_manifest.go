package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/hub"
	"github.com/quantpack/quantpack/internal/hfconfig"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
)

// ExportManifest is the quantpack.json of an export. Every member is
// documented in docs/export.md.
type ExportManifest struct {
	Format       string         `json:"format"` // ExportFormat
	Kind         string         `json:"kind"`   // "onnx"
	ToolVersion  string         `json:"tool_version"`
	Precision    Precision      `json:"precision"`
	Int8Mode     string         `json:"int8_mode,omitempty"`
	Int4Accuracy int            `json:"int4_accuracy_level,omitempty"`
	Opset        int            `json:"opset"`
	IRVersion    int64          `json:"ir_version"`
	Graph        string         `json:"graph"` // "fused" or "plain"
	Architecture string         `json:"architecture"`
	ModelType    string         `json:"model_type,omitempty"`
	Ops          map[string]int `json:"ops"`
	Inputs       []IOSpec       `json:"inputs"`
	Outputs      []IOSpec       `json:"outputs"`
	Image        ImageSpec      `json:"image"`
	Sizes        ExportSizes    `json:"sizes"`
	Source       ExportOrigin   `json:"source"`
	// NonFiniteTensors and NonFinite count the tensors with NaN or ±Inf
	// found by the conversion behind the export (convert's totals); an fp32
	// export of a checkpoint converts nothing and does not look.
	NonFiniteTensors int             `json:"non_finite_tensors,omitempty"`
	NonFinite        *NonFinite      `json:"non_finite,omitempty"`
	Files            []manifest.File `json:"files"`
	// Auto is what --precision auto chose and measured, with each
	// quantizable tensor's scheme (nil otherwise).
	Auto *AutoRecord `json:"auto,omitempty"`
}

// IOSpec is a graph input or output; -1 marks the dynamic batch dimension.
type IOSpec struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// ImageSpec is the static input size and where it came from
// ("--image-size", "preprocessor_config.json crop_size", ... ,
// "config.json image_size").
type ImageSpec struct {
	Height int    `json:"height"`
	Width  int    `json:"width"`
	From   string `json:"from"`
}

// ExportSizes are the file sizes of the graph and its weights.
type ExportSizes struct {
	ModelBytes   int64 `json:"model_bytes"`
	DataBytes    int64 `json:"data_bytes"`
	TotalBytes   int64 `json:"total_bytes"`
	Initializers int   `json:"initializers"`
	// InitializerBytes counts initializer payloads, inline and external.
	InitializerBytes int64 `json:"initializer_bytes"`
}

// ExportOrigin says what was exported: the path given, its kind
// ("checkpoint" or "artifact"), the artifact's scheme when there was one
// (export's own conversion included), and the sha256 of the original
// checkpoint files.
type ExportOrigin struct {
	Path      string          `json:"path"`
	Kind      string          `json:"kind"`
	Converted bool            `json:"converted,omitempty"` // export ran convert first
	Scheme    *SchemeParams   `json:"scheme,omitempty"`
	Files     []manifest.File `json:"files"`
	Hub       *hub.Source     `json:"hub,omitempty"` // the Hub commit the checkpoint came from
}

func newExportManifest(s, origin *exportSource, b *builder, prec Precision, from string, srcHash func() ([]manifest.File, error)) (*ExportManifest, error) {
	m := &ExportManifest{Format: ExportFormat, Kind: "onnx", ToolVersion: version.Version, Precision: prec,
		Opset: b.opt.Opset, IRVersion: irVersion(b.opt.Opset), Graph: "fused", Architecture: s.arch.Name,
		ModelType: s.cfg.ModelType(), Ops: b.opsUsed(),
		Image: ImageSpec{Height: b.opt.Height, Width: b.opt.Width, From: from}}
	if b.opt.Plain {
		m.Graph = "plain"
	}
	m.Auto = b.opt.auto
	if prec == ExportInt8 {
		m.Int8Mode = b.opt.Int8Mode
	}
	if prec == ExportInt4 {
		m.Int4Accuracy = b.opt.Int4Accuracy
	}
	for _, v := range b.g.Inputs {
		m.Inputs = append(m.Inputs, ioSpec(v))
	}
	for _, v := range b.g.Outputs {
		m.Outputs = append(m.Outputs, ioSpec(v))
	}
	m.Sizes.Initializers = len(b.g.Initializers)
	for _, t := range b.g.Initializers {
		n, err := t.DataSize()
		if err != nil {
			return nil, err
		}
		m.Sizes.InitializerBytes += n
	}
	m.Source = ExportOrigin{Path: origin.dir, Kind: "checkpoint", Converted: s != origin}
	if origin.artifact != nil {
		m.Source.Kind = "artifact"
	}
	if s.artifact != nil {
		// An artifact records the sha256 of the checkpoint it was made from.
		sc := s.artifact.Scheme
		m.Source.Scheme = &sc
		m.Source.Files = s.artifact.Sources
		m.Source.Hub = s.artifact.Hub
	}
	if srcHash != nil {
		files, err := srcHash()
		if err != nil {
			return nil, err
		}
		m.Source.Files = files
	}
	return m, nil
}

func ioSpec(v *onnx.ValueInfo) IOSpec {
	s := IOSpec{Name: v.Name, DType: "float32", Shape: []int64{}}
	if v.ElemType != onnx.Float {
		s.DType = v.ElemType.String()
	}
	for _, d := range v.Shape {
		if d.Param != "" {
			s.Shape = append(s.Shape, -1)
		} else {
			s.Shape = append(s.Shape, d.Value)
		}
	}
	return s
}

// exportImageSize picks the input size: the flag, else the size the model's
// image processor produces (its crop when it center-crops, else a
// height×width resize) as hfconfig reads preprocessor_config.json, class
// defaults included, so that verify prepares images at the same size; else
// config.json image_size.
func exportImageSize(dir string, cfg *Config, flag int) (h, w int, from string, err error) {
	if flag > 0 {
		return flag, flag, "--image-size", nil
	}
	pc, ok, err := hfconfig.ReadPreprocessorConfig(dir, cfg.ModelType())
	if err != nil {
		return 0, 0, "", fmt.Errorf("%w (or pass --image-size)", err)
	}
	if ok {
		var sz hfconfig.Size
		switch {
		case pc.DoCenterCrop:
			sz, from = pc.CropSize, "preprocessor_config.json crop_size"
		case pc.DoResize && pc.Size.ShortestEdge == 0:
			sz, from = pc.Size, "preprocessor_config.json size"
		}
		if sz.Height > maxImage || sz.Width > maxImage {
			return 0, 0, "", &hfconfig.ConfigError{Path: pc.Source, Kind: ErrExportUnsupported,
				Err: fmt.Errorf("%dx%d is larger than export's limit %d (pass --image-size)", sz.Height, sz.Width, maxImage)}
		}
		if sz.Height > 0 && sz.Width > 0 {
			return sz.Height, sz.Width, from, nil
		}
	}
	img := cfg.Int("image_size", 224)
	if err := cfg.Err(); err != nil {
		return 0, 0, "", err
	}
	if img <= 0 || img > maxImage {
		return 0, 0, "", cfg.Invalid("image_size %d out of range", img)
	}
	return img, img, "config.json image_size", nil
}
