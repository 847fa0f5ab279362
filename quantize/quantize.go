package quantize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
	"github.com/quantpack/quantpack/verify"
)

// Defaults of Config.
const (
	DefaultSamples = 128
	// DefaultBatch is 1: every calibrated tensor of a batch is held in
	// memory twice (ONNX Runtime's output and the copy being folded), so
	// memory grows with the batch, while CPU throughput of vision models
	// hardly does.
	DefaultBatch = 1
	DefaultSeed  = 1
)

// ModelFile is the graph's name inside an export directory.
const ModelFile = "model.onnx"

// Config is everything `quantpack quantize` takes.
type Config struct {
	Options
	Method     Method
	Percentile float64 // for Percentile; 0 means DefaultPercentile
	// Calibration inputs: at most one of CalibImages and CalibData; with
	// neither, Samples synthetic inputs.
	CalibImages string
	CalibData   []string
	// Preprocessor is a preprocessor_config.json for --calib-images when
	// SRC is a bare .onnx (default: the one beside the model).
	Preprocessor string
	Samples      int // 0 means DefaultSamples
	Batch        int // 0 means DefaultBatch
	Seed         uint64
	// Origin is recorded as the source path in the manifest instead of
	// SRC (export --int8-mode static quantizes a temporary FP32 export).
	Origin string
	// Report is a directory to write the calibration report into
	// (calibration.md, .json, .png); "" for none.
	Report string
	// MinCosine, when > 0, is an accuracy target: the mean output cosine
	// with FP32 over Holdout held-out samples (the ones after the
	// calibration samples in the same source). When the fully quantized
	// graph misses it, the nodes are ranked by sensitivity and the worst
	// left float until it holds (recorded in the manifest).
	MinCosine float64
	Holdout   int // 0 means DefaultHoldout
}

func (c *Config) normalize() error {
	if c.Method == "" {
		c.Method = Percentile
	}
	if _, err := ParseMethod(string(c.Method)); err != nil {
		return err
	}
	if c.Percentile == 0 {
		c.Percentile = DefaultPercentile
	}
	if c.Percentile <= 50 || c.Percentile > 100 || math.IsNaN(c.Percentile) {
		return fmt.Errorf("%w: --percentile %v must be in (50, 100]", ErrOption, c.Percentile)
	}
	if c.ActivationType == "" {
		c.ActivationType = Uint8
	}
	if _, err := ParseQType(string(c.ActivationType)); err != nil {
		return err
	}
	if c.CalibImages != "" && len(c.CalibData) > 0 {
		return fmt.Errorf("%w: give --calib-images or --calib-data, not both", ErrOption)
	}
	if c.Samples == 0 {
		c.Samples = DefaultSamples
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Holdout == 0 {
		c.Holdout = DefaultHoldout
	}
	if !(c.MinCosine >= 0 && c.MinCosine <= 1) {
		return fmt.Errorf("%w: --min-cosine %v must be in [0, 1]", ErrOption, c.MinCosine)
	}
	if c.Samples < 1 || c.Batch < 1 || c.Holdout < 1 {
		return fmt.Errorf("%w: --calib-samples, --batch and --holdout must be ≥ 1", ErrOption)
	}
	return CheckGlobs(c.Exclude)
}

// loadModel reads the model at path and prepares it for the plan: Constant
// nodes hoisted into initializers, opset 11/12 raised to 13 when that
// changes no node's meaning (per-channel weights).
func loadModel(path string) (m *onnx.Model, upgradedFrom int64, why string, err error) {
	m, err = onnx.ReadFile(path)
	if err != nil {
		return nil, 0, "", err
	}
	HoistConstants(m)
	upgradedFrom, why = UpgradeOpset(m)
	return m, upgradedFrom, why, nil
}

// ModelPath resolves SRC (an .onnx file or a directory holding model.onnx)
// into the model file and whether SRC was a directory.
func ModelPath(src string) (string, bool, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", ErrSource, err)
	}
	if st.IsDir() {
		p := filepath.Join(src, ModelFile)
		if _, err := os.Stat(p); err != nil {
			return "", false, fmt.Errorf("%w: %s has no %s", ErrSource, src, ModelFile)
		}
		return p, true, nil
	}
	if filepath.Ext(src) != ".onnx" {
		return "", false, fmt.Errorf("%w: %s is neither a directory nor an .onnx file", ErrSource, src)
	}
	return src, false, nil
}

// Run quantizes the model at src into the directory out (created
// atomically: it appears complete or not at all). open runs the FP32 model
// for calibration.
func Run(ctx context.Context, src, out string, cfg Config, open OpenFunc) (*Manifest, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	modelPath, isDir, err := ModelPath(src)
	if err != nil {
		return nil, err
	}
	m, upgradedFrom, noUpgrade, err := loadModel(modelPath)
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(m, cfg.Options)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(modelPath)
	source, pre, err := newSource(cfg, m, dir)
	if err != nil {
		return nil, err
	}
	defer source.Close()
	stats, err := Collect(ctx, m, dir, plan.Tensors, open, source)
	if err != nil {
		return nil, err
	}
	calibrated := slices.Clone(plan.Tensors)
	bad := map[string]string{}
	for _, t := range plan.Tensors {
		s := stats[t]
		switch {
		case s.NonFinite > 0:
			bad[t] = fmt.Sprintf("NaN/Inf in activation %q (%d values in calibration)", t, s.NonFinite)
		case s.Count == 0:
			bad[t] = fmt.Sprintf("activation %q had no values in calibration", t)
		}
	}
	plan.leaveFloat(bad)
	var acc *Accuracy
	if cfg.MinCosine > 0 && len(plan.Targets) > 0 {
		if acc, err = accuracyAware(ctx, m, modelPath, dir, cfg, plan, bad, stats, open); err != nil {
			return nil, err
		}
	}
	if len(plan.Targets) == 0 {
		return nil, fmt.Errorf("%w: every candidate node was left float (%d); see the reasons with --exclude off", ErrNothingToQuantize, len(plan.Float))
	}
	acts, records := chooseParams(plan, stats, cfg)

	mf := &Manifest{Format: Format, Kind: "onnx", ToolVersion: version.Version, Precision: "int8", Int8Mode: "static",
		Method: cfg.Method, ActivationType: cfg.ActivationType, Opset: plan.Opset,
		Exclude: cfg.Exclude, IncludeOps: cfg.IncludeOps, Activations: records,
		Calibration: source.Info(), QuantizedNodes: map[string]int{}, Accuracy: acc, OpsetUpgradedFrom: upgradedFrom}
	if cfg.Method == Percentile {
		p := cfg.Percentile
		mf.Percentile = &p
	}
	mf.WeightScheme = "int8 symmetric per output channel (zero point 0, codes -127..127)"
	if !plan.PerChannel {
		mf.WeightScheme = "int8 symmetric per tensor (opset < 13 has no per-axis DequantizeLinear)"
		if noUpgrade != "" {
			mf.WeightScheme += "; not raised to 13: " + noUpgrade
		}
	}
	for _, t := range plan.Targets {
		mf.QuantizedNodes[opKey(t.Node)]++
	}
	mf.Float = plan.Float
	if mf.Source.Files, mf.Source.SourceBytes, err = manifest.HashModelFiles(modelPath); err != nil {
		return nil, err
	}
	mf.Source.Path = src
	if cfg.Origin != "" {
		mf.Source.Path = cfg.Origin
	}

	if mf.Weights, err = Apply(m, plan, acts, cfg.ActivationType); err != nil {
		return nil, err
	}
	mf.Ops = map[string]int{}
	for _, n := range m.Graph.Nodes {
		mf.Ops[opKey(n)]++
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := write(out, m, mf, dir, isDir, pre); err != nil {
		return nil, err
	}
	if cfg.Report != "" {
		if err := WriteReport(cfg.Report, NewReport(mf, calibrated, stats)); err != nil {
			return nil, fmt.Errorf("model written to %s, report failed: %w", out, err)
		}
	}
	return mf, nil
}

// accuracyAware runs --min-cosine: it measures the quantized graph on the
// held-out samples and leaves the most sensitive nodes of plan float until
// the target holds.
func accuracyAware(ctx context.Context, m *onnx.Model, modelPath, dir string, cfg Config, plan *Plan, bad map[string]string,
	stats map[string]*Stats, open OpenFunc) (*Accuracy, error) {
	hc := cfg
	hc.Samples, hc.Batch = cfg.Samples+cfg.Holdout, 1
	src, _, err := newSource(hc, m, dir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	held := &skipSource{Source: src, skip: cfg.Samples}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	fp32, err := open(b, dir)
	if err != nil {
		return nil, err
	}
	h, err := newHeldOut(ctx, held, fp32, cfg.Samples)
	fp32.Close()
	if err != nil {
		return nil, err
	}
	acc := &Accuracy{MinCosine: cfg.MinCosine, Holdout: held.Info()}
	c := &candidate{load: func() (*onnx.Model, error) {
		m, _, _, err := loadModel(modelPath)
		return m, err
	}, opt: cfg.Options, cfg: cfg, bad: bad, stats: stats, open: open, dir: dir, held: h}
	reasons, err := c.autoExclude(ctx, targetList(plan), acc)
	if err != nil {
		return nil, err
	}
	plan.leaveFloatNodes(reasons)
	return acc, nil
}

// snap widens a range outward to a grid of 2^-12 of its magnitude, so that
// a last-bit difference in what the runtime computed (thread count, CPU
// kernel) almost never changes the scale written: the output bytes are a
// function of the calibration inputs, not of the machine.
func snap(lo, hi float64) (float64, float64) {
	m := math.Max(math.Abs(lo), math.Abs(hi))
	if m == 0 || math.IsInf(m, 0) {
		return lo, hi
	}
	_, e := math.Frexp(m)
	q := math.Ldexp(1, e-12)
	return math.Floor(lo/q) * q, math.Ceil(hi/q) * q
}

// chooseParams computes every activation's range and parameters.
func chooseParams(p *Plan, stats map[string]*Stats, cfg Config) (map[string]Params, []ActRecord) {
	consumers := map[string][]string{}
	for _, t := range p.Targets {
		for _, a := range t.Acts {
			name := t.Node.Inputs[a]
			consumers[name] = append(consumers[name], t.ID)
		}
	}
	acts := map[string]Params{}
	var recs []ActRecord
	for _, name := range p.Tensors {
		s := stats[name]
		lo, hi := s.Range(cfg.Method, cfg.Percentile)
		lo, hi = snap(lo, hi)
		pr := ActivationParams(lo, hi, cfg.ActivationType)
		acts[name] = pr
		recs = append(recs, ActRecord{Tensor: name, Consumers: consumers[name], Min: s.Min, Max: s.Max,
			Range: [2]float64{lo, hi}, Scale: pr.Scale, ZeroPoint: pr.ZeroPoint, Clipped: s.Clipped(lo, hi), Count: s.Count})
	}
	return acts, recs
}

// sideFiles are copied from an export directory SRC beside the graph.
var sideFiles = []string{"config.json", "preprocessor_config.json"}

// write makes out atomically: model.onnx (+ model.onnx.data), the side
// files, quantpack.json.
func write(out string, m *onnx.Model, mf *Manifest, srcDir string, isDir bool, pre string) error {
	d, err := atomicfile.CreateDir(out)
	if err != nil {
		return fmt.Errorf("%w: -o %v", ErrOption, err)
	}
	defer d.Abort()
	if err := onnx.WriteFile(d.Join(ModelFile), m, onnx.WriteOptions{}); err != nil {
		return err
	}
	var copies [][2]string
	if isDir {
		for _, name := range sideFiles {
			copies = append(copies, [2]string{filepath.Join(srcDir, name), name})
		}
	}
	if pre != "" { // --preprocessor given: verify finds it beside the graph
		copies = append(copies, [2]string{pre, "preprocessor_config.json"})
	}
	for _, c := range copies {
		b, err := os.ReadFile(c[0])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.Join(c[1]), b, 0o644); err != nil {
			return err
		}
	}
	if mf.Files, err = manifest.Scan(d.Tmp()); err != nil {
		return err
	}
	for _, f := range mf.Files {
		switch f.Path {
		case ModelFile:
			mf.Sizes.ModelBytes = f.Size
		case ModelFile + ".data":
			mf.Sizes.DataBytes = f.Size
		}
	}
	mf.Sizes.TotalBytes = mf.Sizes.ModelBytes + mf.Sizes.DataBytes
	mf.Sizes.SourceBytes = mf.Source.SourceBytes
	if mf.Sizes.SourceBytes > 0 {
		mf.Sizes.Ratio = float64(mf.Sizes.TotalBytes) / float64(mf.Sizes.SourceBytes)
	}
	b, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.Join(manifest.Name), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return d.Commit()
}

// graphInputs describes m's graph inputs that are not initializers.
func graphInputs(m *onnx.Model) []verify.IOInfo {
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	var out []verify.IOInfo
	for _, v := range m.Graph.Inputs {
		if inits[v.Name] {
			continue
		}
		info := verify.IOInfo{Name: v.Name, DType: verify.DType(v.ElemType.String())}
		switch v.ElemType {
		case onnx.Float:
			info.DType = verify.Float32
		case onnx.Float16:
			info.DType = verify.Float16
		case onnx.Int64:
			info.DType = verify.Int64
		}
		for _, d := range v.Shape {
			if d.Param == "" && d.IsKnown() {
				info.Shape = append(info.Shape, d.Value)
			} else {
				info.Shape = append(info.Shape, -1)
			}
		}
		out = append(out, info)
	}
	return out
}

// newSource builds the calibration inputs; pre is a --preprocessor file to
// copy beside the output.
func newSource(cfg Config, m *onnx.Model, dir string) (Source, string, error) {
	inputs := graphInputs(m)
	if len(cfg.CalibData) > 0 {
		s, err := NewNpySource(cfg.CalibData, inputs, cfg.Samples, cfg.Batch)
		return s, "", err
	}
	loadPre := func() (*verify.Preprocessor, error) {
		if cfg.Preprocessor != "" {
			b, err := os.ReadFile(cfg.Preprocessor)
			if err != nil {
				return nil, fmt.Errorf("%w: --preprocessor: %v", ErrOption, err)
			}
			pc, err := verify.ParsePreprocessorConfig(cfg.Preprocessor, b, "")
			if err != nil {
				return nil, err
			}
			return verify.NewPreprocessor(pc)
		}
		return verify.LoadPreprocessor(dir)
	}
	if cfg.CalibImages != "" {
		if len(inputs) != 1 {
			return nil, "", fmt.Errorf("%w: --calib-images drives one image input; the model has %d inputs (use --calib-data NAME=FILE.npy)", ErrCalibData, len(inputs))
		}
		pre, err := loadPre()
		if err != nil {
			return nil, "", fmt.Errorf("preprocessing for --calib-images (give --preprocessor FILE for a bare .onnx): %w", err)
		}
		s, err := NewImageSource(cfg.CalibImages, pre, inputs[0], cfg.Samples, cfg.Batch)
		return s, cfg.Preprocessor, err
	}
	if len(inputs) == 1 && len(inputs[0].Shape) == 4 {
		if pre, err := loadPre(); err == nil {
			s, err := NewSyntheticImageSource(pre, inputs[0], cfg.Samples, cfg.Batch, cfg.Seed)
			return s, cfg.Preprocessor, err
		}
	}
	s, err := NewRandomSource(inputs, cfg.Samples, cfg.Batch, cfg.Seed)
	return s, "", err
}
