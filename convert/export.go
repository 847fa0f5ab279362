package convert

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/hfconfig"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/safeio"
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

// ExportPrecision is Precision: export and convert share one precision type.
// The name and the Export* constants remain for callers written before.
type ExportPrecision = Precision

// Export's names for the precisions (the same values as FP32, FP16, ...).
const (
	ExportFP32 = FP32
	ExportFP16 = FP16
	ExportInt8 = Int8
	ExportInt4 = Int4
	ExportNF4  = NF4
)

// Export constants.
const (
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
	Precision Precision
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
	// AllowUnused exports a source whose config.json leaves some of its
	// tensors unused (they are dropped); without it that is ErrUnusedTensors.
	AllowUnused bool
	// Convert configures the conversion export runs first when SRC is a
	// checkpoint and the precision is not fp32 (Precision is set by export).
	// Its Overrides make a mixed graph; its Auto is recorded in the
	// manifest.
	Convert Options
	// SourceHashes: as Options.SourceHashes, for a checkpoint SRC.
	SourceHashes []manifest.File

	awqMul map[string][]float32 // from export's own awq conversion
}

// Validate reports option mistakes (usage errors) without doing any work.
func (o ExportOptions) Validate() error { return o.validate() }

func (o *ExportOptions) validate() error {
	if o.Precision != "" {
		if _, err := ParseExportPrecision(string(o.Precision)); err != nil {
			return usage(err)
		}
	}
	switch o.Int8Mode {
	case "", Int8Dynamic, Int8QDQ:
	default:
		return usage(fmt.Errorf("--int8-mode %q: want dynamic or qdq", o.Int8Mode))
	}
	if o.Opset != 0 && (o.Opset < 17 || o.Opset > 21) {
		return usage(fmt.Errorf("--opset %d: want 17 to 21", o.Opset))
	}
	if o.ImageSize < 0 || o.ImageSize > maxImage {
		return usage(fmt.Errorf("--image-size %d: want 1 to %d", o.ImageSize, maxImage))
	}
	if o.Convert.Asymmetric && o.Precision != Int4 {
		return usage(fmt.Errorf("--asymmetric applies to int4 only, not %s", cmp.Or(string(o.Precision), "the source's precision")))
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

func (s *exportSource) precision() Precision {
	if s.artifact == nil {
		return ExportFP32
	}
	return s.artifact.Precision
}

// readArtifactManifest returns dir's quantpack.json when it is a convert
// artifact, nil when dir has no quantpack.json, or an error.
func readArtifactManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, manifest.Name)
	b, err := safeio.ReadFile(p, maxManifestBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
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
	if s.arch.graph() == nil {
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
		if registry[n].graph() != nil {
			out = append(out, n)
		}
	}
	return out
}

// checkTensors compares the source with the architecture's tensor list for
// its config (validateTensors); tensors the config does not use are an
// error unless allowUnused.
func (s *exportSource) checkTensors(allowUnused bool) error {
	unused, err := validateTensors(s.arch, s.cfg, s.w)
	if err != nil {
		return err
	}
	if len(unused) > 0 && !allowUnused {
		return unusedErr(s.dir, unused)
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
	opt = opt.withDefaults()
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
	if err := s.checkTensors(opt.AllowUnused); err != nil {
		return nil, err
	}
	if s.artifact != nil && s.artifact.Precision == BF16 {
		return nil, fmt.Errorf("%w: bf16 artifacts (export the checkpoint at fp32 or fp16)", ErrExportUnsupported)
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return nil, outputErr(fmt.Errorf("%s: %w", out, atomicfile.ErrNotEmpty))
	}
	dir, err := atomicfile.CreateDir(out)
	if err != nil {
		return nil, outputErr(err)
	}
	defer dir.Abort()
	var conv *Totals // of the conversion behind the export
	if s.artifact != nil {
		conv = &s.artifact.Totals
	}
	if s.artifact == nil && prec != ExportFP32 {
		copt := opt.Convert
		copt.Precision = prec
		copt.NoStats = true
		if copt.SourceHashes == nil {
			copt.SourceHashes = opt.SourceHashes
		}
		tmp := dir.Join("convert.tmp")
		aw := &awqOutput{}
		copt.awqExplicitMul, copt.awqOut = true, aw
		cm, err := Convert(ctx, src, tmp, copt)
		opt.awqMul = aw.mul
		if err != nil {
			return nil, err
		}
		conv = &cm.Totals
		if s, err = openExportSource(tmp); err != nil {
			return nil, err
		}
	}
	m, err := exportInto(ctx, s, origin, dir.Tmp(), prec, &opt)
	if err == nil && conv != nil {
		m.NonFiniteTensors, m.NonFinite = conv.NonFiniteTensors, conv.NonFinite
	}
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
	if m.Source.Hub == nil {
		m.Source.Hub = opt.Convert.Hub
	}
	if m.Files, err = addCard(dir.Tmp(), m.Files, exportCard(origin, m)); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(dir.Join(manifest.Name), append(b, '\n')); err != nil {
		return nil, err
	}
	testHookBeforeCommit()
	if err := dir.CommitContext(ctx); err != nil {
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
	if patch := s.cfg.Int("patch_size", 0); patch > 0 && s.arch.family.Patches && (h%patch != 0 || w%patch != 0) {
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
func exportInto(ctx context.Context, s, origin *exportSource, dir string, prec Precision, opt *ExportOptions) (*ExportManifest, error) {
	if err := s.checkTensors(true); err != nil { // unused ones: checked on origin
		return nil, err
	}
	h, w, from, err := s.imageSize(opt.ImageSize)
	if err != nil {
		return nil, err
	}
	// Hash the source files while the graph is written: both are bound by
	// reading gigabytes, and they use different cores. (An artifact's
	// manifest has its checkpoint's hashes already.) Returning early
	// cancels the hashing.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srcHash func() ([]manifest.File, error)
	if s.artifact == nil {
		srcHash = sourceHashes(ctx, origin.ckpt.Files(), opt.SourceHashes)
	}
	gopt := &graphOptions{Precision: prec, Int8Mode: opt.Int8Mode, Opset: opt.Opset, Plain: opt.Plain,
		Int4Accuracy: opt.Int4Accuracy, Height: h, Width: w, auto: opt.Convert.Auto, awqMul: opt.awqMul}
	b := newBuilder(s.cfg, s.arch, s.w, gopt)
	if err := s.arch.graph()(b); err != nil {
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
	if err := onnx.WriteFile(filepath.Join(dir, "model.onnx"), model, onnx.WriteOptions{ExternalThreshold: exportThreshold, Context: ctx}); err != nil {
		return nil, err
	}
	for _, name := range []string{"config.json", "preprocessor_config.json"} {
		data, err := safeio.ReadFile(filepath.Join(origin.dir, name), hfconfig.MaxConfigBytes)
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
	return newExportManifest(s, origin, b, prec, from, srcHash)
}
