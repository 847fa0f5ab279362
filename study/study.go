package study

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quantpack/quantpack/convert"
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
	Sources    []string
	Out        string
	Precisions []string // default fp32,fp16,int8,int4,nf4
	Int8Mode   string   // export's --int8-mode
	// Verify settings, passed to every verify.Compare.
	Open       verify.Opener
	Memory     verify.MemoryProbe
	Device     string
	EPLibrary  string
	ORTVersion string
	Threads    int
	BatchSizes []int
	Warmup     int
	Iters      int
	Images     string
	Labels     string
	Samples    int
	// Force recomputes cached cells.
	Force       bool
	Constraints Constraints
	// Log, when set, gets one line per finished or reused cell.
	Log func(line string)
}

// DefaultPrecisions are the study's columns.
var DefaultPrecisions = []string{"fp32", "fp16", "int8", "int4", "nf4"}

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
}

// ModelInfo is one source checkpoint.
type ModelInfo struct {
	Name    string          `json:"name"`
	Path    string          `json:"path"`
	Arch    string          `json:"architecture"`
	Family  string          `json:"family"`
	Params  int64           `json:"params"`
	Sources []manifest.File `json:"sources"`
}

func (o *Options) normalize() error {
	if len(o.Sources) == 0 {
		return fmt.Errorf("%w: no models given", ErrOption)
	}
	if o.Out == "" {
		return fmt.Errorf("%w: -o REPORTDIR is required", ErrOption)
	}
	if len(o.Precisions) == 0 {
		o.Precisions = DefaultPrecisions
	}
	for _, p := range o.Precisions {
		if _, err := convert.ParseExportPrecision(p); err != nil {
			return fmt.Errorf("%w: %v", ErrOption, err)
		}
	}
	if len(o.BatchSizes) == 0 {
		o.BatchSizes = []int{1}
	}
	if o.Open == nil {
		return fmt.Errorf("study: Options.Open is nil")
	}
	return nil
}

// Run executes the study and writes the reports into opt.Out.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, err
	}
	r := &Report{Format: ReportFormat, ToolVersion: version.Version, Created: time.Now().UTC().Format(time.RFC3339),
		Provenance: verify.CollectProvenance(), Constraints: opt.Constraints,
		Settings: Settings{Precisions: opt.Precisions, Int8Mode: opt.Int8Mode, Device: opt.Device, ORTVersion: opt.ORTVersion,
			Threads: opt.Threads, BatchSizes: opt.BatchSizes, Warmup: opt.Warmup, Iters: opt.Iters, Inputs: inputsKind(opt)}}
	names := map[string]int{}
	for _, src := range opt.Sources {
		mi, err := describe(src, names)
		if err != nil {
			return nil, err
		}
		r.Models = append(r.Models, mi)
		cells, err := runModel(ctx, &opt, mi)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mi.Name, err)
		}
		r.Cells = append(r.Cells, cells...)
	}
	r.Families = summarize(r)
	r.Recommendations = recommend(r, opt.Constraints)
	if err := writeReports(opt.Out, r); err != nil {
		return nil, err
	}
	return r, nil
}

func inputsKind(opt Options) string {
	if opt.Images != "" {
		return "images: " + opt.Images
	}
	return "synthetic"
}

// describe opens a checkpoint for its architecture, parameter count and
// file hashes; names are made unique by suffixing -2, -3, ….
func describe(src string, names map[string]int) (ModelInfo, error) {
	s, err := convert.OpenSource(src, false)
	if err != nil {
		return ModelInfo{}, err
	}
	defer s.Close()
	name := filepath.Base(filepath.Clean(src))
	names[name]++
	if n := names[name]; n > 1 {
		name = fmt.Sprintf("%s-%d", name, n)
	}
	mi := ModelInfo{Name: name, Path: src, Arch: s.ArchName()}
	if s.Arch != nil {
		mi.Family = s.Arch.Family
	}
	for _, e := range s.Ckpt.Tensors() {
		switch e.DType {
		case "F32", "F16", "BF16", "F64":
			mi.Params += e.NumElements()
		}
	}
	for _, f := range s.Ckpt.Files() {
		h, err := manifest.HashFile(f)
		if err != nil {
			return mi, err
		}
		mi.Sources = append(mi.Sources, h)
	}
	return mi, nil
}

// runModel computes (or reuses) every cell of one model. The quantized
// cells come first; the FP32 cell reuses the first one's baseline
// measurement, taken in the same run as that cell's candidate.
func runModel(ctx context.Context, opt *Options, mi ModelInfo) ([]*Cell, error) {
	work := filepath.Join(opt.Out, "work", mi.Name)
	fp32Dir := filepath.Join(work, "fp32")
	settings := []any{version.Version, mi.Sources, opt.Int8Mode, opt.Device, opt.EPLibrary, opt.ORTVersion,
		opt.Threads, opt.BatchSizes, opt.Warmup, opt.Iters, opt.Images, opt.Labels, opt.Samples,
		// convert's 4-bit defaults decide the int4/nf4 cells' bytes
		convert.DefaultInt4Block, convert.DefaultInt4Method, convert.DefaultNF4Block, convert.DefaultNF4Method}
	var cells []*Cell
	var firstReport *verify.Report
	var fp32Wanted bool
	for _, p := range opt.Precisions {
		if p == "fp32" {
			fp32Wanted = true
			continue
		}
		c, rep, err := runCell(ctx, opt, mi, p, work, fp32Dir, cellKey(append(settings, p)...))
		if err != nil {
			return nil, err
		}
		if firstReport == nil && rep != nil {
			firstReport = rep
		}
		cells = append(cells, c)
	}
	if fp32Wanted {
		key := cellKey(append(settings, "fp32")...)
		path := cachePath(opt.Out, mi.Name, "fp32")
		if c, ok := loadCell(path, key); ok && !opt.Force {
			opt.logCell(c)
			cells = append([]*Cell{c}, cells...)
		} else {
			if firstReport == nil {
				// Only FP32 asked for (or every other cell was cached):
				// measure FP32 against itself.
				if err := ensureExport(ctx, opt, mi, "fp32", fp32Dir, work); err != nil {
					return nil, err
				}
				rep, err := compare(ctx, opt, fp32Dir, fp32Dir)
				if err != nil {
					return nil, err
				}
				firstReport = rep
			}
			c := baselineCell(mi, firstReport, fp32Dir)
			c.Key = key
			if err := saveCell(path, c); err != nil {
				return nil, err
			}
			opt.logCell(c)
			cells = append([]*Cell{c}, cells...)
		}
	}
	// Size ratios against the FP32 ONNX bytes.
	base := fp32Bytes(fp32Dir)
	for _, c := range cells {
		if base > 0 && c.ONNXBytes > 0 {
			c.SizeRatio = float64(c.ONNXBytes) / float64(base)
		}
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
	path := cachePath(opt.Out, mi.Name, p)
	if c, ok := loadCell(path, key); ok && !opt.Force {
		opt.logCell(c)
		return c, nil, nil
	}
	if err := ensureExport(ctx, opt, mi, "fp32", fp32Dir, work); err != nil {
		return nil, nil, err
	}
	artDir := filepath.Join(work, p+"-artifact")
	outDir := filepath.Join(work, p)
	for _, d := range []string{artDir, outDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, nil, err
		}
	}
	cm, err := convert.Convert(ctx, mi.Path, artDir, convert.Options{Precision: convert.Precision(p), DoubleQuant: p == "nf4"})
	if err != nil {
		return nil, nil, fmt.Errorf("convert %s: %w", p, err)
	}
	em, err := convert.Export(ctx, artDir, outDir, convert.ExportOptions{Precision: convert.ExportPrecision(p), Int8Mode: opt.Int8Mode})
	if err != nil {
		return nil, nil, fmt.Errorf("export %s: %w", p, err)
	}
	rep, err := compare(ctx, opt, fp32Dir, outDir)
	if err != nil {
		return nil, nil, fmt.Errorf("verify %s: %w", p, err)
	}
	c := cellFrom(mi, p, rep)
	c.Key = key
	c.ArtifactBytes = cm.Totals.BytesOut
	c.BitsPerParam = cm.Totals.BitsPerParam
	c.ONNXBytes = em.Sizes.TotalBytes
	if err := saveCell(path, c); err != nil {
		return nil, nil, err
	}
	opt.logCell(c)
	return c, rep, nil
}

// ensureExport exports SRC at a precision unless a complete export is there.
func ensureExport(ctx context.Context, opt *Options, mi ModelInfo, p, dir, work string) error {
	if _, err := os.Stat(filepath.Join(dir, manifest.Name)); err == nil {
		return nil
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	os.RemoveAll(dir)
	_, err := convert.Export(ctx, mi.Path, dir, convert.ExportOptions{Precision: convert.ExportPrecision(p)})
	if err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	return nil
}

func compare(ctx context.Context, opt *Options, base, cand string) (*verify.Report, error) {
	return verify.Compare(ctx, verify.Options{Baseline: base, Candidate: cand, Open: opt.Open, Memory: opt.Memory,
		Device: opt.Device, EPLibrary: opt.EPLibrary, ORTVersion: opt.ORTVersion, Threads: opt.Threads,
		BatchSizes: opt.BatchSizes, Warmup: opt.Warmup, Iters: opt.Iters, Images: opt.Images, Labels: opt.Labels,
		Samples: opt.Samples})
}

// cellFrom turns a verify report into a cell.
func cellFrom(mi ModelInfo, p string, rep *verify.Report) *Cell {
	c := &Cell{Model: mi.Name, Family: mi.Family, Arch: mi.Arch, Precision: p, Params: mi.Params, Verify: rep,
		Inputs: rep.Inputs.Kind}
	for i, b := range rep.Candidate.Batches {
		bc := BatchCell{Batch: b.Batch, P50Ms: b.LatencyMs.P50, P90Ms: b.LatencyMs.P90, P99Ms: b.LatencyMs.P99,
			Throughput: b.ThroughputSPS}
		if i < len(rep.Baseline.Batches) {
			bc.BaselineP50 = rep.Baseline.Batches[i].LatencyMs.P50
		}
		c.Batches = append(c.Batches, bc)
	}
	c.P50Ms, c.BaselineP50, c.Speedup = rep.Candidate.LatencyMs.P50, rep.Baseline.LatencyMs.P50, rep.Speedup
	if n := len(c.Batches); n > 0 {
		c.Throughput = c.Batches[n-1].Throughput
	}
	c.PeakMB, c.BaselineMB = rep.Candidate.PeakRSSMB, rep.Baseline.PeakRSSMB
	if c.PeakMB != nil && c.BaselineMB != nil && *c.BaselineMB > 0 {
		v := 1 - *c.PeakMB / *c.BaselineMB
		c.MemReduction = &v
	}
	c.Top1, c.Top5 = rep.Agreement.Top1, rep.Agreement.Top5
	c.CosineMean, c.CosineMin = rep.Agreement.CosineMean, rep.Agreement.CosineMin
	if a := rep.Accuracy; a != nil {
		acc, drop := a.CandidateTop1, a.Drop
		c.Accuracy, c.AccuracyDrop = &acc, &drop
	}
	return c
}

// baselineCell is the FP32 row: the baseline side of a verify report.
func baselineCell(mi ModelInfo, rep *verify.Report, fp32Dir string) *Cell {
	c := &Cell{Model: mi.Name, Family: mi.Family, Arch: mi.Arch, Precision: "fp32", Params: mi.Params,
		Inputs: rep.Inputs.Kind, Speedup: 1, SizeRatio: 1, BitsPerParam: 32}
	for _, b := range rep.Baseline.Batches {
		c.Batches = append(c.Batches, BatchCell{Batch: b.Batch, P50Ms: b.LatencyMs.P50, P90Ms: b.LatencyMs.P90,
			P99Ms: b.LatencyMs.P99, BaselineP50: b.LatencyMs.P50, Throughput: b.ThroughputSPS})
	}
	c.P50Ms, c.BaselineP50 = rep.Baseline.LatencyMs.P50, rep.Baseline.LatencyMs.P50
	if n := len(c.Batches); n > 0 {
		c.Throughput = c.Batches[n-1].Throughput
	}
	c.PeakMB, c.BaselineMB = rep.Baseline.PeakRSSMB, rep.Baseline.PeakRSSMB
	if c.PeakMB != nil {
		zero := 0.0
		c.MemReduction = &zero
	}
	one := 1.0
	c.Top1, c.Top5, c.CosineMean, c.CosineMin = &one, &one, 1, 1
	if rep.Agreement.Top1 == nil {
		c.Top1, c.Top5 = nil, nil
	}
	if a := rep.Accuracy; a != nil {
		acc, drop := a.BaselineTop1, 0.0
		c.Accuracy, c.AccuracyDrop = &acc, &drop
	}
	for _, s := range mi.Sources {
		c.ArtifactBytes += s.Size
	}
	c.ONNXBytes = fp32Bytes(fp32Dir)
	return c
}

// fp32Bytes is the FP32 export's size (model.onnx + data).
func fp32Bytes(dir string) int64 {
	files, _, err := manifest.ReadFiles(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, f := range files {
		if strings.HasPrefix(f.Path, "model.onnx") {
			n += f.Size
		}
	}
	return n
}
