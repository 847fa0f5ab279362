package study

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
	"github.com/quantpack/quantpack/verify"
)

// ReportFormat identifies report.json documents.
const ReportFormat = "quantpack-study/1"

// ErrOption is a bad study option (exit 2).
var ErrOption = fault.New(fault.Usage, "study: invalid option")

// Options configure Run.
type Options struct {
	Sources []string
	// Names optionally names a source in reports (a Hub snapshot directory
	// is named by its commit; the caller passes the repository name).
	Names      map[string]string
	Out        string
	Precisions []convert.Precision // default DefaultPrecisions
	precs      []string            // Precisions checked, fp32 first, as names (normalize)
	Int8Mode   string              // export's --int8-mode
	// Runtime and Inputs go to every verify.Compare as they are. The
	// report's runtime settings are what the sessions applied (see
	// Settings), the cell keys hold what was asked.
	verify.Runtime
	verify.Inputs
	// Static, when set, adds the calibrated static INT8 column Int8Static
	// (see Columns); nil changes nothing.
	Static *Static
	// Force recomputes cached cells and re-exports FP32.
	Force bool
	// Shard runs only this slice of the cells (see assign); the zero value
	// runs them all. Merge combines the shards' report directories.
	Shard       Shard
	Constraints Constraints
	// Log, when set, gets one line per finished or reused cell.
	Log func(line string)
	// Sensitivity, when set, adds each model's per-layer sensitivity
	// (heatmap and most sensitive layers) to the report.
	Sensitivity *SensitivityOptions
	// Auto configures the auto column (precision "auto" in Precisions).
	Auto *AutoOptions

	exported map[string]bool // FP32 exports made in this run (--force)
	inputs   string          // inputsDigest of Images and Labels
	calib    string          // inputsDigest of Auto.Images
}

// DefaultPrecisions are the study's columns.
var DefaultPrecisions = slices.Clone(convert.ExportPrecisions)

// Report is report.json.
type Report struct {
	Format          string            `json:"format"`
	ToolVersion     string            `json:"tool_version"`
	Created         string            `json:"created"`
	Settings        Settings          `json:"settings"`
	Provenance      verify.Provenance `json:"provenance"`
	Models          []ModelInfo       `json:"models"`
	Cells           []*Cell           `json:"cells"`
	Families        []FamilySummary   `json:"families"`
	Recommendations []Recommendation  `json:"recommendations"`
	Constraints     Constraints       `json:"constraints"`
	// StudyID hashes what makes two runs the same study: the settings,
	// constraints and the models (names, files and sizes). Shards of one
	// study share it; Merge refuses shards whose IDs differ.
	StudyID string `json:"study_id"`
	// Shard is set in a shard's report: which slice it ran.
	Shard *ShardInfo `json:"shard,omitempty"`
	// Failures are models whose cells could not all be measured; the report
	// holds every cell that was.
	Failures []Failure `json:"failures,omitempty"`
	// Machines lists each distinct machine of a merged study's shards when
	// there was more than one (speedups stay within-run ratios; absolute
	// latencies from different machines are not comparable).
	Machines []string `json:"machines,omitempty"`
	// Sensitivity is each model's per-layer sensitivity (--sensitivity),
	// in model order.
	Sensitivity []SensitivitySummary `json:"sensitivity,omitempty"`
}

// ShardInfo is one shard's place in its study.
type ShardInfo struct {
	Shard
	// Cells are the cells this shard was dealt, "model/precision".
	Cells []string `json:"cells"`
}

// Failure is a model whose cells did not all finish.
type Failure struct {
	Model string `json:"model"`
	Error string `json:"error"`
}

// Settings are the run's knobs, recorded with the numbers.
type Settings struct {
	Precisions []string `json:"precisions"`
	Int8Mode   string   `json:"int8_mode"`
	Device     string   `json:"device"`
	ORTVersion string   `json:"ort_version"`
	Threads    int      `json:"threads"`
	BatchSizes []int    `json:"batch_sizes"`
	Warmup     int      `json:"warmup"`
	Iters      int      `json:"iters"`
	Inputs     string   `json:"inputs"`
	Samples    int      `json:"samples"`
	Seed       uint64   `json:"seed"`
	Labels     string   `json:"labels,omitempty"`
	EPLibrary  string   `json:"ep_library,omitempty"`
	Memory     bool     `json:"memory"`
	// Calibration is the int8-static column's, when the study has one.
	Calibration *StaticSettings `json:"calibration,omitempty"`
	// Sensitivity is the precision of the per-layer sensitivity reports
	// ("" without --sensitivity).
	Sensitivity string `json:"sensitivity,omitempty"`
	// Auto is the auto column's target and candidates ("" without it).
	Auto string `json:"auto,omitempty"`
}

// ModelInfo is one source checkpoint.
type ModelInfo struct {
	Name    string          `json:"name"`
	Path    string          `json:"path"`
	Arch    string          `json:"architecture"`
	Family  string          `json:"family"`
	Params  int64           `json:"params"`
	Sources []manifest.File `json:"sources"`
	files   []string        // paths of Sources, for hashSources
}

func precisionNames(ps []convert.Precision) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func (o *Options) normalize() error {
	if len(o.Sources) == 0 {
		return fmt.Errorf("%w: no models given", ErrOption)
	}
	if o.Out == "" {
		return fmt.Errorf("%w: -o REPORTDIR is required", ErrOption)
	}
	switch o.Int8Mode {
	case "", convert.Int8Dynamic, convert.Int8QDQ:
	case Int8StaticMode:
		return fmt.Errorf("%w: --int8-mode %s: give --calib-images DIR instead, which adds the %s column beside int8", ErrOption, o.Int8Mode, Int8Static)
	default:
		return fmt.Errorf("%w: --int8-mode %q: want %s or %s", ErrOption, o.Int8Mode, convert.Int8Dynamic, convert.Int8QDQ)
	}
	if o.Static != nil {
		s := *o.Static // normalize writes defaults in; the caller's stays as given
		o.Static = &s
		if err := o.Static.normalize(); err != nil {
			return err
		}
	}
	o.Precisions = Columns(o.Precisions, o.Static != nil)
	seen := map[string]bool{}
	var precs []string
	for _, p := range o.Precisions {
		switch _, err := convert.ParseExportPrecision(string(p)); {
		case p == Int8Static && o.Static == nil:
			return fmt.Errorf("%w: precision %s needs calibration images (--calib-images DIR)", ErrOption, p)
		case p == Int8Static:
		case p == PrecisionAuto && o.Auto == nil:
			return fmt.Errorf("%w: precision auto needs its target (--auto-max-top1-drop or --auto-min-cosine)", ErrOption)
		case p == PrecisionAuto && o.Auto.Target.MaxTop1Drop == nil && o.Auto.Target.MinCosine == nil:
			return fmt.Errorf("%w: precision auto needs a top-1 drop or cosine target", ErrOption)
		case p == PrecisionAuto:
		case err != nil:
			return fmt.Errorf("%w: %v", ErrOption, err)
		}
		if seen[string(p)] {
			return fmt.Errorf("%w: precision %s given twice", ErrOption, p)
		}
		seen[string(p)] = true
		precs = append(precs, string(p))
	}
	// FP32 is every row's baseline: it leads each model's rows.
	if seen["fp32"] {
		precs = append([]string{"fp32"}, slices.DeleteFunc(precs, func(p string) bool { return p == "fp32" })...)
	}
	o.precs = precs
	if o.Open == nil {
		return fmt.Errorf("study: Options.Open is nil")
	}
	// verify's own checks, before the first cell rather than in it.
	if err := o.Runtime.Normalize(); err != nil {
		return err
	}
	if err := o.Inputs.Normalize(); err != nil {
		return err
	}
	if o.Shard.Total < 0 || o.Shard.Total > maxShards || (o.Shard.Total > 0 && (o.Shard.Index < 1 || o.Shard.Index > o.Shard.Total)) {
		return fmt.Errorf("%w: shard %s", ErrOption, o.Shard)
	}
	for _, p := range []struct{ flag, path string }{{"--images", o.Images}, {"--labels", o.Labels}} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSource, p.flag, err)
		}
	}
	return nil
}

// settings is what the report records of opt.
func (o *Options) settings() Settings {
	s := Settings{Precisions: o.precs, Int8Mode: o.Int8Mode, Device: o.Device, ORTVersion: o.ORTVersion,
		Threads: o.Threads, BatchSizes: o.BatchSizes, Warmup: o.Warmup, Iters: o.Iters, Inputs: inputsKind(*o),
		Samples: o.Samples, Seed: o.Seed, Labels: o.Labels, EPLibrary: o.EPLibrary, Memory: o.Memory != nil,
		Sensitivity: o.sensitivityPrecision(), Auto: o.autoSetting()}
	if o.Static != nil {
		s.Calibration = o.Static.settings()
	}
	return s
}

// takeApplied replaces the runtime settings recorded from Options (what
// was asked) with what the sessions applied, as the cells' verify reports
// say (verify takes them from the sessions themselves), so the report's
// device, runtime version and threads are what ran. Cell keys hold the
// asked settings, so every cell of one study ran alike; cells that did not
// are a bug and fail the study. StudyID stays the hash of what was asked,
// which is what shards of one study share.
func (s *Settings) takeApplied(cells []*Cell) error {
	var first *Cell
	for _, c := range cells {
		if c.Verify == nil {
			continue
		}
		a := c.Verify.Provenance.Applied()
		if first == nil {
			first = c
			s.Device, s.EPLibrary, s.ORTVersion, s.Threads = a.Device, a.EPLibrary, a.ORTVersion, a.Threads
			continue
		}
		if f := first.Verify.Provenance.Applied(); a != f {
			return fmt.Errorf("study: internal: %s/%s ran with %+v, %s/%s with %+v", first.Model, first.Precision, f,
				c.Model, c.Precision, a)
		}
	}
	return nil
}

func (o *Options) autoSetting() string {
	if o.Auto == nil || !slices.Contains(o.precs, PrecisionAuto) {
		return ""
	}
	cands := o.Auto.Candidates
	if len(cands) == 0 {
		cands = DefaultAutoCandidates
	}
	return fmt.Sprintf("%s; candidates %s; calibration %s", o.Auto.Target, strings.Join(precisionNames(cands), ","),
		orDefault(o.Auto.Images, fmt.Sprintf("synthetic %d", o.Auto.Samples)))
}

func (o *Options) sensitivityPrecision() string {
	if o.Sensitivity == nil {
		return ""
	}
	return string(o.Sensitivity.Precision)
}

// studyID hashes the settings, constraints and models of a study (see
// Report.StudyID). Sources enter by name and size: shards hash only the
// checkpoints they use, and Merge compares those hashes model by model.
func studyID(s Settings, k Constraints, models []ModelInfo) string {
	type src struct {
		Name, Arch string
		Files      []manifest.File
	}
	var ms []src
	for _, m := range models {
		var fs []manifest.File
		for _, f := range m.Sources {
			fs = append(fs, manifest.File{Path: f.Path, Size: f.Size})
		}
		ms = append(ms, src{m.Name, m.Arch, fs})
	}
	return cellKey(ReportFormat, version.Version, s, k, ms)
}

// ErrFailed is a study in which some model failed; the report holds the
// cells that were measured and names the models that failed.
var ErrFailed = fault.New(fault.Other, "study: some models failed")

// RunError lists the models of a study that failed. It unwraps to the
// first failure's error, so the exit code is that error's class.
type RunError struct {
	Failures []Failure
	Report   string // the report that was written regardless
	first    error
}

func (e *RunError) Error() string {
	var parts []string
	for _, f := range e.Failures {
		parts = append(parts, f.Model+": "+f.Error)
	}
	return fmt.Sprintf("study: %d model(s) failed (%s); what was measured is in %s", len(e.Failures), strings.Join(parts, "; "), e.Report)
}

// Unwrap returns the first failure's error.
func (e *RunError) Unwrap() error { return e.first }

// Run executes the study (or opt.Shard's slice of it) and writes the
// reports into opt.Out. Every SRC is checked before the first cell runs.
// When a model fails, the other models still run (unless the context was
// cancelled), the reports are written with every cell that was measured,
// and Run returns them with a *RunError naming the failed models.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	models, err := describeAll(opt.Sources, opt.Names)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, err
	}
	r := &Report{Format: ReportFormat, ToolVersion: version.Version, Created: time.Now().UTC().Format(time.RFC3339),
		Provenance: verify.CollectProvenance(), Constraints: opt.Constraints, Settings: opt.settings(), Models: models}
	r.StudyID = studyID(r.Settings, r.Constraints, models)
	if opt.inputs, err = inputsDigest(ctx, opt.Images, opt.Labels); err != nil {
		return nil, err
	}
	if opt.Static != nil {
		if opt.Static.digest, err = inputsDigest(ctx, opt.Static.Config.CalibImages, ""); err != nil {
			return nil, err
		}
	}
	if opt.calib, err = autoCalib(ctx, &opt); err != nil {
		return nil, err
	}
	var calib string
	if opt.Sensitivity != nil {
		if calib, err = inputsDigest(ctx, opt.Sensitivity.Images, ""); err != nil {
			return nil, err
		}
	}
	shards := assign(models, opt.precs, opt.Shard.Total)
	mine := shards[0]
	if !opt.Shard.Whole() {
		mine = shards[opt.Shard.Index-1]
		r.Shard = &ShardInfo{Shard: opt.Shard, Cells: cellNames(models, mine)}
	}
	perModel := map[int][]string{}
	for _, c := range mine {
		perModel[c.model] = append(perModel[c.model], c.precision)
	}
	var firstErr error
	for i := range r.Models {
		precs := perModel[i]
		if len(precs) == 0 {
			continue
		}
		mi := &r.Models[i]
		cells, err := func() ([]*Cell, error) {
			if err := hashSources(ctx, mi); err != nil {
				return nil, err
			}
			cells, err := runModel(ctx, &opt, *mi, precs, r.Provenance)
			// A model's sensitivity runs once, in the shard that holds its
			// first cell.
			if err == nil && opt.Sensitivity != nil && slices.Contains(precs, opt.precs[0]) {
				var s *SensitivitySummary
				if s, err = runSensitivity(ctx, &opt, i, *mi, calib); err == nil {
					r.Sensitivity = append(r.Sensitivity, *s)
					opt.logSensitivity(s)
				}
			}
			return cells, err
		}()
		r.Cells = append(r.Cells, cells...)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", mi.Name, err)
			}
			r.Failures = append(r.Failures, Failure{Model: mi.Name, Error: err.Error()})
			if opt.Log != nil {
				opt.Log(fmt.Sprintf("failed %s: %v", mi.Name, err))
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	if err := r.Settings.takeApplied(r.Cells); err != nil {
		return nil, err
	}
	finalize(r)
	if err := writeReports(opt.Out, r); err != nil {
		return nil, err
	}
	if firstErr != nil {
		if ctx.Err() != nil {
			return r, firstErr // interrupted: exit 130, the report is there
		}
		return r, &RunError{Failures: r.Failures, Report: filepath.Join(opt.Out, FileMarkdown), first: firstErr}
	}
	return r, nil
}

// finalize orders the cells as the tables show them (models as given,
// precisions as given with FP32 first) and derives the family summary and
// the recommendations. A whole run and a merge of its shards go through it
// alike, so they agree row for row.
func finalize(r *Report) {
	modelRank := map[string]int{}
	for i, m := range r.Models {
		modelRank[m.Name] = i
	}
	precRank := map[string]int{}
	for i, p := range r.Settings.Precisions {
		precRank[p] = i
	}
	slices.SortStableFunc(r.Cells, func(a, b *Cell) int {
		if d := modelRank[a.Model] - modelRank[b.Model]; d != 0 {
			return d
		}
		return precRank[a.Precision] - precRank[b.Precision]
	})
	r.Families = summarize(r)
	r.Recommendations = recommend(r, r.Constraints)
}

func inputsKind(opt Options) string {
	if opt.Images != "" {
		return "images: " + opt.Images
	}
	return "synthetic"
}

// cellKeyParts are everything besides the precision that changes a cell's
// bytes or its measurement: the tool version (the converter and exporter),
// the checkpoint's sha256 sums, every export and verify option (the image
// folder and labels by content too), the ONNX Runtime version and the
// machine.
func (o *Options) cellKeyParts(mi ModelInfo, machine verify.Provenance) []any {
	var sums []string
	for _, s := range mi.Sources {
		sums = append(sums, s.Path+":"+s.SHA256)
	}
	return []any{"quantpack-study-cell/3", version.Version, sums, o.Int8Mode, o.Device, o.EPLibrary, o.ORTVersion,
		o.Threads, o.BatchSizes, o.Warmup, o.Iters, o.Images, o.Labels, o.inputs, o.Samples, o.Seed, o.Memory != nil,
		machine.CPUModel, machine.CPUFlags, machine.LogicalCPUs, machine.OS, machine.Arch,
		// convert's 4-bit defaults decide the int4/nf4 cells' bytes
		convert.DefaultInt4Block, convert.Int4BlockRule, convert.DefaultInt4Method, convert.DefaultNF4Block, convert.DefaultNF4Method}
}

// cellKey is the key of model parts' cell at precision p; an int8-static
// cell's also holds the calibration (Static.keyParts), an auto cell's what
// its search was made from (target, candidates, budget, calibration
// content). Other cells' keys do not depend on either.
func (o *Options) cellKey(parts []any, p string) string {
	k := append(slices.Clone(parts), p)
	switch {
	case p == Int8Static && o.Static != nil:
		k = append(k, o.Static.keyParts()...)
	case p == PrecisionAuto && o.Auto != nil:
		k = append(k, o.autoKeyParts(o.calib)...)
	}
	return cellKey(k...)
}

// runModel computes (or reuses) the cells of one model at precs. The
// quantized cells come first; the FP32 cell reuses the first one's baseline
// measurement, taken in the same run as that cell's candidate, or measures
// FP32 against itself when no quantized cell ran. The cells finished
// before an error are returned with it.
func runModel(ctx context.Context, opt *Options, mi ModelInfo, precs []string, machine verify.Provenance) ([]*Cell, error) {
	work := filepath.Join(opt.Out, "work", mi.Name)
	fp32Dir := filepath.Join(work, "fp32")
	parts := opt.cellKeyParts(mi, machine)
	var cells []*Cell
	var todo []string
	for _, p := range precs {
		key := opt.cellKey(parts, p)
		if c, ok := loadCell(cachePath(opt.Out, key), key, mi); ok && !opt.Force {
			opt.logCell(c)
			cells = append(cells, c)
			continue
		}
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		return cells, nil
	}
	if err := ensureExport(ctx, opt, mi, fp32Dir); err != nil {
		return cells, err
	}
	var firstReport *verify.Report
	fp32Wanted := false
	for _, p := range todo {
		if p == "fp32" {
			fp32Wanted = true
			continue
		}
		c, rep, err := runCell(ctx, opt, mi, p, work, fp32Dir, opt.cellKey(parts, p))
		if err != nil {
			return cells, err
		}
		if firstReport == nil {
			firstReport = rep
		}
		cells = append(cells, c)
	}
	if fp32Wanted {
		if firstReport == nil {
			rep, err := compare(ctx, opt, fp32Dir, fp32Dir)
			if err != nil {
				return cells, fmt.Errorf("verify fp32: %w", err)
			}
			firstReport = rep
		}
		c := baselineCell(mi, firstReport, fp32Dir)
		c.Key = opt.cellKey(parts, "fp32")
		if err := saveCell(cachePath(opt.Out, c.Key), c); err != nil {
			return cells, err
		}
		opt.logCell(c)
		cells = append(cells, c)
	}
	return cells, nil
}

func (o *Options) logCell(c *Cell) {
	if o.Log == nil {
		return
	}
	state := "done"
	if c.Reused {
		state = "reused"
	}
	top1 := "n/a"
	if c.Top1 != nil {
		top1 = fmt.Sprintf("%.1f%%", 100**c.Top1)
	}
	o.Log(fmt.Sprintf("%s %s/%s: p50 %.3g ms (%.2f× FP32), %s, top-1 agreement %s, cosine %.5f",
		state, c.Model, c.Precision, c.P50Ms, c.Speedup, humanMB(c.ONNXBytes), top1, c.CosineMean))
}

func humanMB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// runCell computes one quantized cell, or reuses its cache entry.
func runCell(ctx context.Context, opt *Options, mi ModelInfo, p, work, fp32Dir, key string) (*Cell, *verify.Report, error) {
	if p == Int8Static {
		return runStaticCell(ctx, opt, mi, work, fp32Dir, key)
	}
	artDir := filepath.Join(work, p+"-artifact")
	outDir := filepath.Join(work, p)
	for _, d := range []string{artDir, outDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, nil, err
		}
	}
	var em *convert.ExportManifest
	var artBytes int64
	var bits float64
	var auto *convert.AutoRecord
	if p == PrecisionAuto {
		var size int64
		var err error
		if em, size, auto, err = runAutoExport(ctx, opt, mi, outDir); err != nil {
			return nil, nil, fmt.Errorf("auto: %w", err)
		}
		// No artifact of its own: the export is the artifact, its bits per
		// parameter those of its files.
		artBytes = size
		if mi.Params > 0 {
			bits = 8 * float64(size) / float64(mi.Params)
		}
	} else {
		cm, err := convert.Convert(ctx, mi.Path, artDir, convert.Options{Precision: convert.Precision(p), SourceHashes: mi.Sources})
		if err != nil {
			return nil, nil, fmt.Errorf("convert %s: %w", p, err)
		}
		if em, err = convert.Export(ctx, artDir, outDir, convert.ExportOptions{Precision: convert.Precision(p), Int8Mode: opt.Int8Mode}); err != nil {
			return nil, nil, fmt.Errorf("export %s: %w", p, err)
		}
		artBytes, bits = cm.Totals.BytesOut, cm.Totals.BitsPerParam
	}
	rep, err := compare(ctx, opt, fp32Dir, outDir)
	if err != nil {
		return nil, nil, fmt.Errorf("verify %s: %w", p, err)
	}
	c := cellFrom(mi, p, rep)
	c.ArtifactBytes = artBytes
	c.BitsPerParam = bits
	c.Auto = auto
	c.ONNXBytes = em.Sizes.TotalBytes
	if err := opt.keepCell(c, key, fp32Dir); err != nil {
		return nil, nil, err
	}
	return c, rep, nil
}

// keepCell completes a computed cell (its key, its ONNX size as a fraction
// of the model's FP32 export in fp32Dir), caches it under key and logs it.
func (o *Options) keepCell(c *Cell, key, fp32Dir string) error {
	c.Key = key
	if base := fp32Bytes(fp32Dir); base > 0 && c.ONNXBytes > 0 {
		c.SizeRatio = float64(c.ONNXBytes) / float64(base)
	}
	if err := saveCell(cachePath(o.Out, key), c); err != nil {
		return err
	}
	o.logCell(c)
	return nil
}

// ensureExport makes work/<model>/fp32, the baseline every cell of the
// model is verified against, unless an export of the same checkpoint bytes
// by the same quantpack is there. The export is keyed like a cell: its key
// (the source sha256 sums and the tool version) is written beside it after
// it is complete, and a missing or different key is a miss. With --force
// it is made again, once per run.
func ensureExport(ctx context.Context, opt *Options, mi ModelInfo, dir string) error {
	var sums []string
	for _, s := range mi.Sources {
		sums = append(sums, s.Path+":"+s.SHA256)
	}
	key := cellKey("quantpack-study-export/1", version.Version, sums, "fp32")
	keyFile := dir + ".key"
	if opt.exported == nil {
		opt.exported = map[string]bool{}
	}
	if b, err := os.ReadFile(keyFile); err == nil && strings.TrimSpace(string(b)) == key &&
		(!opt.Force || opt.exported[dir]) {
		if _, err := os.Stat(filepath.Join(dir, manifest.Name)); err == nil {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	for _, p := range []string{keyFile, dir} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if _, err := convert.Export(ctx, mi.Path, dir, convert.ExportOptions{Precision: convert.ExportFP32, SourceHashes: mi.Sources}); err != nil {
		return fmt.Errorf("export fp32: %w", err)
	}
	opt.exported[dir] = true
	return atomicfile.WriteFile(keyFile, []byte(key+"\n"))
}

func compare(ctx context.Context, opt *Options, base, cand string) (*verify.Report, error) {
	return verify.Compare(ctx, verify.Options{Baseline: base, Candidate: cand, Runtime: opt.Runtime, Inputs: opt.Inputs})
}
