package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
)

// Export's sentinels.
var (
	ErrImageSize    = fault.New(fault.Usage, "convert: image size not usable")
	ErrNoGraph      = fault.New(fault.Unsupported, "convert: no ONNX graph builder for architecture")
	ErrArtifact     = fault.New(fault.Invalid, "convert: invalid quantpack artifact")
	ErrPrecisionMix = fault.New(fault.Usage, "convert: artifact precision differs from the requested one")
	// ErrExportUnsupported is a valid input export cannot handle (a BEiT at
	// another image size, a bf16 artifact).
	ErrExportUnsupported = fault.New(fault.Unsupported, "convert: not supported by export")
)

// ExportPrecision is export's --precision.
type ExportPrecision string

// Export precisions.
const (
	ExportFP32 ExportPrecision = "fp32"
	ExportFP16 ExportPrecision = "fp16"
	ExportInt8 ExportPrecision = "int8"
	ExportInt4 ExportPrecision = "int4"
	ExportNF4  ExportPrecision = "nf4"
)

// ExportPrecisions lists export's precisions.
var ExportPrecisions = []ExportPrecision{ExportFP32, ExportFP16, ExportInt8, ExportInt4, ExportNF4}

// Export defaults.
const (
	DefaultOpset = 17
	// DefaultInt4Accuracy is MatMulNBits' accuracy_level 4: activations
	// quantized to int8 per block inside the kernel, the fast CPU path.
	DefaultInt4Accuracy = 4
	// ExportFormat identifies quantpack.json documents written by export.
	ExportFormat = "quantpack-onnx/1"
	// exportThreshold: initializers of at least this many bytes go to
	// model.onnx.data; shape constants and scalars stay inline, where tools
	// that print the graph show them.
	exportThreshold  = 1024
	maxManifestBytes = 64 << 20
)

// ExportOptions are export's flags.
type ExportOptions struct {
	// Precision: "" means the artifact's precision, or fp32 for a checkpoint.
	Precision ExportPrecision
	// Int8Mode is Int8Dynamic (default) or Int8QDQ.
	Int8Mode string
	// ImageSize overrides the input size (square); 0 takes
	// preprocessor_config.json's crop or resize size, else config image_size.
	ImageSize int
	// Opset of the default ONNX domain, 17 (default) to 21.
	Opset int
	// Plain emits only standard ONNX operators for the network body (no
	// com.microsoft MultiHeadAttention); quantized MatMuls still need their
	// contrib operators.
	Plain bool
	// Int4Accuracy is MatMulNBits' accuracy_level; 0 means DefaultInt4Accuracy.
	Int4Accuracy int
	// Convert configures the conversion export runs first when SRC is a
	// checkpoint and the precision is not fp32 (Precision is set by export).
	// Its Overrides make a mixed graph; its Auto is recorded in the
	// manifest.
	Convert Options
}

// ParseExportPrecision validates a precision name.
func ParseExportPrecision(s string) (ExportPrecision, error) {
	for _, p := range ExportPrecisions {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown precision %q (want fp32, fp16, int8, int4 or nf4)", s)
}

func (o *ExportOptions) validate() error {
	if o.Precision != "" {
		if _, err := ParseExportPrecision(string(o.Precision)); err != nil {
			return usage(err)
		}
	}
	switch o.Int8Mode {
	case "":
		o.Int8Mode = Int8Dynamic
	case Int8Dynamic, Int8QDQ:
	default:
		return usage(fmt.Errorf("--int8-mode %q: want dynamic or qdq", o.Int8Mode))
	}
	if o.Opset == 0 {
		o.Opset = DefaultOpset
	}
	if o.Opset < 17 || o.Opset > 21 {
		return usage(fmt.Errorf("--opset %d: want 17 to 21", o.Opset))
	}
	if o.ImageSize < 0 || o.ImageSize > maxImage {
		return usage(fmt.Errorf("--image-size %d: want 1 to %d", o.ImageSize, maxImage))
	}
	if o.Int4Accuracy == 0 {
		o.Int4Accuracy = DefaultInt4Accuracy
	}
	if o.Int4Accuracy < 0 || o.Int4Accuracy > 4 {
		return usage(fmt.Errorf("int4 accuracy level %d: want 1 to 4", o.Int4Accuracy))
	}
	return nil
}

// irVersion is the ONNX IR version that goes with an opset (onnx/helper.py
// VERSION_TABLE).
func irVersion(opset int) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	}
	return 8
}

// exportSource is an opened export input.
type exportSource struct {
	dir      string
	cfg      *Config
	arch     *Arch
	ckpt     *safetensors.Checkpoint
	artifact *Manifest // nil for a checkpoint
	w        *weights
}

func (s *exportSource) precision() ExportPrecision {
	if s.artifact == nil {
		return ExportFP32
	}
	return ExportPrecision(s.artifact.Precision)
}

// readArtifactManifest returns dir's quantpack.json when it is a convert
// artifact, nil when dir has no quantpack.json, or an error.
func readArtifactManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, manifest.Name)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", p, ErrArtifact, maxManifestBytes)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", p, ErrArtifact, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s: %w: format %q is not %q", p, ErrArtifact, m.Format, ManifestFormat)
	}
	seen := map[string]bool{}
	for i, r := range m.Tensors {
		if r == nil || r.Name == "" || seen[r.Name] {
			return nil, fmt.Errorf("%s: %w: tensors[%d] is empty or repeated", p, ErrArtifact, i)
		}
		seen[r.Name] = true
	}
	return &m, nil
}

// openExportSource opens a checkpoint directory or a convert artifact.
func openExportSource(dir string) (*exportSource, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, usage(fmt.Errorf("%s: export needs a model directory (config.json + safetensors)", dir))
	}
	s := &exportSource{dir: dir}
	if s.artifact, err = readArtifactManifest(dir); err != nil {
		return nil, err
	}
	if s.cfg, err = LoadConfig(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w: no config.json", dir, ErrUnsupported)
		}
		return nil, err
	}
	if s.arch, err = LookupArch(s.cfg.Architecture()); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if s.arch.Graph == nil {
		return nil, fmt.Errorf("%s: %w %s; export supports: %s", dir, ErrNoGraph, s.arch.Name, strings.Join(Exportable(), ", "))
	}
	if s.ckpt, err = safetensors.OpenCheckpoint(dir); err != nil {
		return nil, err
	}
	s.w = newWeights(dir, s.ckpt, s.artifact)
	return s, nil
}

func (s *exportSource) Close() error { return s.ckpt.Close() }

// Exportable lists the architectures with a graph builder, sorted.
func Exportable() []string {
	var out []string
	for _, n := range Supported() {
		if registry[n].Graph != nil {
			out = append(out, n)
		}
	}
	return out
}

// checkTensors compares the source with the architecture's tensor list for
// its config: every expected tensor present with the expected shape.
func (s *exportSource) checkTensors() error {
	if s.arch.Tensors == nil {
		return nil
	}
	specs, err := s.arch.Tensors(s.arch, s.cfg, s.w.has("pooler.dense.weight"))
	if err != nil {
		return err
	}
	for _, sp := range specs {
		shape, _, err := s.w.info(sp.Name)
		if err != nil {
			return err
		}
		if !slices.Equal(shape, sp.Shape) {
			return tensorErr(s.dir, sp.Name, ErrTensorShape, "has shape %v but config.json implies %v", shape, sp.Shape)
		}
	}
	return nil
}

// Export writes an ONNX export of src (a checkpoint directory or a convert
// artifact) into out, which must not exist or be empty and appears only when
// complete. From a checkpoint at a precision other than fp32, export first
// converts into a temporary artifact with the same policy as convert, so the
// graph holds exactly the codes and scales an artifact would.
func Export(ctx context.Context, src, out string, opt ExportOptions) (*ExportManifest, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	s, err := openExportSource(src)
	if err != nil {
		return nil, err
	}
	origin := s
	defer origin.Close()
	prec := opt.Precision
	if prec == "" {
		prec = s.precision()
	}
	if s.artifact != nil && prec != s.precision() {
		return nil, fmt.Errorf("%w: %s holds a %s artifact; export it at %s or export the original checkpoint at %s",
			ErrPrecisionMix, src, s.artifact.Precision, s.artifact.Precision, prec)
	}
	// Flag mistakes before any slow work (the conversion).
	if _, _, _, err := s.imageSize(opt.ImageSize); err != nil {
		return nil, err
	}
	if s.artifact != nil && s.artifact.Precision == BF16 {
		return nil, fmt.Errorf("%w: bf16 artifacts (export the checkpoint at fp32 or fp16)", ErrExportUnsupported)
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrOutputExists, out)
	}
	dir, err := atomicfile.CreateDir(out)
	if err != nil {
		return nil, outputErr(err)
	}
	defer dir.Abort()
	if s.artifact == nil && prec != ExportFP32 {
		copt := opt.Convert
		copt.Precision = Precision(prec)
		if prec == ExportNF4 && opt.Convert.Precision == "" {
			copt.DoubleQuant = true // convert's default
		}
		copt.NoStats = true
		tmp := dir.Join("convert.tmp")
		if _, err := Convert(ctx, src, tmp, copt); err != nil {
			return nil, err
		}
		if s, err = openExportSource(tmp); err != nil {
			return nil, err
		}
	}
	m, err := exportInto(ctx, s, origin, dir.Tmp(), prec, &opt)
	if s != origin {
		s.Close()
		// The temporary artifact is not part of the export.
		if rerr := os.RemoveAll(dir.Join("convert.tmp")); err == nil {
			err = rerr
		}
	}
	if err != nil {
		return nil, err
	}
	if m.Files, err = manifest.Scan(dir.Tmp()); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		switch f.Path {
		case "model.onnx":
			m.Sizes.ModelBytes = f.Size
		case "model.onnx.data":
			m.Sizes.DataBytes = f.Size
		}
	}
	m.Sizes.TotalBytes = m.Sizes.ModelBytes + m.Sizes.DataBytes
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(dir.Join(manifest.Name), append(b, '\n')); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := dir.Commit(); err != nil {
		return nil, err
	}
	return m, nil
}

// imageSize is the export's input size (see exportImageSize), checked
// against the patch size.
func (s *exportSource) imageSize(flag int) (h, w int, from string, err error) {
	h, w, from, err = exportImageSize(s.dir, s.cfg, flag)
	if err != nil {
		return 0, 0, "", err
	}
	if patch := s.cfg.Int("patch_size", 0); patch > 0 && s.arch.Family != "mobilevit" && (h%patch != 0 || w%patch != 0) {
		err := fmt.Errorf("image size %dx%d (from %s) is not a multiple of patch_size %d", h, w, from, patch)
		if flag != 0 {
			return 0, 0, "", fmt.Errorf("%w: %v", ErrImageSize, err)
		}
		return 0, 0, "", fmt.Errorf("%s: %w: %v", s.dir, ErrConfig, err)
	}
	return h, w, from, nil
}

// exportInto builds and writes the graph of s into dir; origin is what the
// user named (the checkpoint when s is export's own conversion of it).
func exportInto(ctx context.Context, s, origin *exportSource, dir string, prec ExportPrecision, opt *ExportOptions) (*ExportManifest, error) {
	if err := s.checkTensors(); err != nil {
		return nil, err
	}
	h, w, from, err := s.imageSize(opt.ImageSize)
	if err != nil {
		return nil, err
	}
	// Hash the source files while the graph is written: both are bound by
	// reading gigabytes, and they use different cores.
	var hashes <-chan hashResult
	if s.artifact == nil {
		hashes = hashFilesAsync(origin)
	}
	gopt := &graphOptions{Precision: prec, Int8Mode: opt.Int8Mode, Opset: opt.Opset, Plain: opt.Plain,
		Int4Accuracy: opt.Int4Accuracy, Height: h, Width: w, auto: opt.Convert.Auto}
	b := newBuilder(s.cfg, s.arch, s.w, gopt)
	if err := s.arch.Graph(b); err != nil {
		return nil, err
	}
	if b.err != nil {
		return nil, b.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	model := &onnx.Model{IRVersion: irVersion(opt.Opset), ProducerName: "quantpack", ProducerVersion: version.Version,
		Graph: b.g, Opsets: []*onnx.OpsetID{onnx.Opset("", int64(opt.Opset))}}
	if b.usesDomain(msDomain) {
		model.Opsets = append(model.Opsets, onnx.Opset(msDomain, 1))
	}
	if err := onnx.WriteFile(filepath.Join(dir, "model.onnx"), model, onnx.WriteOptions{ExternalThreshold: exportThreshold}); err != nil {
		return nil, err
	}
	for _, name := range []string{"config.json", "preprocessor_config.json"} {
		data, err := os.ReadFile(filepath.Join(origin.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, name), data); err != nil {
			return nil, err
		}
	}
	return newExportManifest(s, origin, b, prec, from, hashes)
}

type hashResult struct {
	files []manifest.File
	err   error
}

// hashFilesAsync hashes a checkpoint's files in the background. (An
// artifact's manifest has its checkpoint's hashes already.)
func hashFilesAsync(origin *exportSource) <-chan hashResult {
	ch := make(chan hashResult, 1)
	files := origin.ckpt.Files()
	go func() {
		var r hashResult
		for _, f := range files {
			h, err := manifest.HashFile(f)
			if err != nil {
				r.err = err
				break
			}
			r.files = append(r.files, h)
		}
		ch <- r
	}()
	return ch
}
