package study

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/verify"
)

// Int8Static is the precision column of the calibrated static INT8 form
// (export --int8-mode static): the model's FP32 export with quantize's
// W8A8 QDQ pass applied, activations calibrated on Static's images. The
// column exists only when Options.Static is set.
const Int8Static = "int8-static"

// Int8StaticMode is export's --int8-mode for that form; study's int8 column
// takes dynamic or qdq, the static form is its own column.
const Int8StaticMode = "static"

// Static configures the int8-static column.
type Static struct {
	// Config is quantize's pass as export --int8-mode static runs it:
	// CalibImages (required: the study calibrates on images), Samples,
	// Method, Percentile, ActivationType, Exclude, IncludeOps, Batch. Zero
	// values take quantize's defaults, which normalize writes in so that
	// the cell key holds them. Origin is set per model.
	Config quantize.Config
	// Open runs the FP32 model for calibration. Required.
	Open quantize.OpenFunc
	// run is the pass (quantize.Run); tests replace it.
	run func(ctx context.Context, src, out string, cfg quantize.Config, open quantize.OpenFunc) (*quantize.Manifest, error)
	// digest hashes the calibration images (inputsDigest), once per run.
	digest string
}

// ParsePrecisions reads --precisions: export precisions and Int8Static.
func ParsePrecisions(list string) ([]convert.Precision, error) {
	var out []convert.Precision
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if s == Int8Static || s == PrecisionAuto {
			out = append(out, convert.Precision(s))
			continue
		}
		p, err := convert.ParseExportPrecision(s)
		if err != nil {
			return nil, fmt.Errorf("%w (or %s, with calibration images, or %s)", err, Int8Static, PrecisionAuto)
		}
		out = append(out, p)
	}
	return out, nil
}

// Columns are the precision columns a study of precs makes: precs (default
// DefaultPrecisions) and, with calibration (static), Int8Static after int8
// unless precs name it already. Without calibration nothing is added.
func Columns(precs []convert.Precision, static bool) []convert.Precision {
	if len(precs) == 0 {
		precs = DefaultPrecisions
	}
	precs = slices.Clone(precs)
	if !static || slices.Contains(precs, Int8Static) {
		return precs
	}
	at := len(precs)
	if i := slices.Index(precs, convert.Int8); i >= 0 {
		at = i + 1
	}
	return slices.Insert(precs, at, Int8Static)
}

// normalize checks the calibration settings before anything runs and
// writes quantize's defaults into the config, so the cell key holds the
// values the pass will use.
func (s *Static) normalize() error {
	c := &s.Config
	if s.Open == nil && s.run == nil {
		return fmt.Errorf("study: Static.Open is nil")
	}
	if c.CalibImages == "" || len(c.CalibData) > 0 || c.Preprocessor != "" {
		return fmt.Errorf("%w: the %s column calibrates on images (--calib-images DIR) with the export's own preprocessing", ErrOption, Int8Static)
	}
	if _, err := os.Stat(c.CalibImages); err != nil {
		return fmt.Errorf("%w: --calib-images: %w", ErrSource, err)
	}
	if c.Method == "" {
		c.Method = quantize.Percentile
	}
	if _, err := quantize.ParseMethod(string(c.Method)); err != nil {
		return fmt.Errorf("%w: %w", ErrOption, err)
	}
	if c.Method == quantize.Percentile && c.Percentile == 0 {
		c.Percentile = quantize.DefaultPercentile
	}
	if c.ActivationType == "" {
		c.ActivationType = quantize.Uint8
	}
	if _, err := quantize.ParseQType(string(c.ActivationType)); err != nil {
		return fmt.Errorf("%w: %w", ErrOption, err)
	}
	if c.Samples == 0 {
		c.Samples = quantize.DefaultSamples
	}
	if c.Batch == 0 {
		c.Batch = quantize.DefaultBatch
	}
	if c.Samples < 1 || c.Batch < 1 {
		return fmt.Errorf("%w: --calib-samples %d and calibration batch %d must be ≥ 1", ErrOption, c.Samples, c.Batch)
	}
	if err := quantize.CheckGlobs(c.Exclude); err != nil {
		return err
	}
	if c.Report != "" {
		return fmt.Errorf("%w: a calibration report is quantize's (--report), not study's", ErrOption)
	}
	if s.run == nil {
		s.run = quantize.Run
	}
	return nil
}

// keyParts are what an int8-static cell is made from besides the model and
// the runtime (Options.cellKeyParts): the pass's settings and the
// calibration images by content. Calibration is deterministic at any
// thread count, so threads are not part of it.
func (s *Static) keyParts() []any {
	c := s.Config
	return []any{"int8-static/1", c.Method, c.Percentile, c.ActivationType, c.Exclude, c.IncludeOps,
		c.Samples, c.Batch, c.Seed, s.digest}
}

// settings is what the report records of the calibration.
func (s *Static) settings() *StaticSettings {
	c := s.Config
	return &StaticSettings{Images: c.CalibImages, Samples: c.Samples, Method: string(c.Method), Percentile: c.Percentile,
		ActivationType: string(c.ActivationType), Exclude: c.Exclude, IncludeOps: c.IncludeOps}
}

// StaticSettings are the int8-static column's calibration settings, in the
// report.
type StaticSettings struct {
	Images         string   `json:"calib_images"`
	Samples        int      `json:"calib_samples"`
	Method         string   `json:"method"`
	Percentile     float64  `json:"percentile,omitempty"`
	ActivationType string   `json:"activation_type"`
	Exclude        []string `json:"exclude,omitempty"`
	IncludeOps     []string `json:"include_ops,omitempty"`
}

// runStaticCell makes the int8-static cell: quantize's pass over the
// model's FP32 export (calibrated in ONNX Runtime on the images), then
// verify against that same FP32 export. There is no safetensors artifact
// (ArtifactBytes 0); bits/param is the ONNX files' bits per parameter.
func runStaticCell(ctx context.Context, opt *Options, mi ModelInfo, work, fp32Dir, key string) (*Cell, *verify.Report, error) {
	outDir := filepath.Join(work, Int8Static)
	if err := os.RemoveAll(outDir); err != nil {
		return nil, nil, err
	}
	cfg := opt.Static.Config
	cfg.Exclude, cfg.IncludeOps = slices.Clone(cfg.Exclude), slices.Clone(cfg.IncludeOps)
	cfg.Origin = mi.Path + " (exported at fp32)"
	qm, err := opt.Static.run(ctx, fp32Dir, outDir, cfg, opt.Static.Open)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize %s: %w", Int8Static, err)
	}
	rep, err := compare(ctx, opt, fp32Dir, outDir)
	if err != nil {
		return nil, nil, fmt.Errorf("verify %s: %w", Int8Static, err)
	}
	c := cellFrom(mi, Int8Static, rep)
	c.ONNXBytes = qm.Sizes.TotalBytes
	if c.Params > 0 {
		c.BitsPerParam = 8 * float64(c.ONNXBytes) / float64(c.Params)
	}
	calib := qm.Calibration
	c.Calibration = &calib
	if err := opt.keepCell(c, key, fp32Dir); err != nil {
		return nil, nil, err
	}
	return c, rep, nil
}
