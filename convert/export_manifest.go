package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
)

// ExportManifest is the quantpack.json of an export. Every member is
// documented in docs/export.md.
type ExportManifest struct {
	Format       string          `json:"format"` // ExportFormat
	Kind         string          `json:"kind"`   // "onnx"
	ToolVersion  string          `json:"tool_version"`
	Precision    ExportPrecision `json:"precision"`
	Int8Mode     string          `json:"int8_mode,omitempty"`
	Int4Accuracy int             `json:"int4_accuracy_level,omitempty"`
	Opset        int             `json:"opset"`
	IRVersion    int64           `json:"ir_version"`
	Graph        string          `json:"graph"` // "fused" or "plain"
	Architecture string          `json:"architecture"`
	ModelType    string          `json:"model_type,omitempty"`
	Ops          map[string]int  `json:"ops"`
	Inputs       []IOSpec        `json:"inputs"`
	Outputs      []IOSpec        `json:"outputs"`
	Image        ImageSpec       `json:"image"`
	Sizes        ExportSizes     `json:"sizes"`
	Source       ExportOrigin    `json:"source"`
	Files        []manifest.File `json:"files"`
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
}

func newExportManifest(s, origin *exportSource, b *builder, prec ExportPrecision, from string, hashes <-chan hashResult) (*ExportManifest, error) {
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
	}
	if hashes != nil {
		r := <-hashes
		if r.err != nil {
			return nil, r.err
		}
		m.Source.Files = r.files
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

// maxPreprocessorBytes caps preprocessor_config.json (a few hundred bytes).
const maxPreprocessorBytes = 1 << 20

// exportImageSize picks the input size: the flag, else the size
// preprocessor_config.json produces (crop_size when do_center_crop, else a
// height/width or integer size), else config.json image_size.
func exportImageSize(dir string, cfg *Config, flag int) (h, w int, from string, err error) {
	if flag > 0 {
		return flag, flag, "--image-size", nil
	}
	p := filepath.Join(dir, "preprocessor_config.json")
	raw, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, 0, "", err
	case len(raw) > maxPreprocessorBytes:
		return 0, 0, "", fmt.Errorf("%s: %w: larger than %d bytes", p, ErrConfig, maxPreprocessorBytes)
	default:
		var pc struct {
			DoCenterCrop *bool           `json:"do_center_crop"`
			CropSize     json.RawMessage `json:"crop_size"`
			Size         json.RawMessage `json:"size"`
		}
		if err := json.Unmarshal(raw, &pc); err != nil {
			return 0, 0, "", fmt.Errorf("%s: %w: %v", p, ErrConfig, err)
		}
		if pc.DoCenterCrop != nil && *pc.DoCenterCrop {
			if h, w, ok := parseHW(pc.CropSize); ok {
				return h, w, "preprocessor_config.json crop_size", nil
			}
		}
		if h, w, ok := parseHW(pc.Size); ok {
			return h, w, "preprocessor_config.json size", nil
		}
	}
	img := cfg.Int("image_size", 224)
	if err := cfg.Err(); err != nil {
		return 0, 0, "", err
	}
	if img <= 0 || img > maxImage {
		return 0, 0, "", cfg.invalid("image_size %d out of range", img)
	}
	return img, img, "config.json image_size", nil
}

// parseHW reads a transformers size: an integer or {"height": h, "width": w}
// ({"shortest_edge": n} alone does not fix the size).
func parseHW(raw json.RawMessage) (int, int, bool) {
	if len(raw) == 0 {
		return 0, 0, false
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n > 0 && n <= maxImage {
		return n, n, true
	}
	var hw struct{ Height, Width int }
	if json.Unmarshal(raw, &hw) == nil && hw.Height > 0 && hw.Width > 0 && hw.Height <= maxImage && hw.Width <= maxImage {
		return hw.Height, hw.Width, true
	}
	return 0, 0, false
}
