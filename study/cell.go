package study

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/verify"
)

// Cell is one model at one precision: what the report tables show, plus the
// full verify report it came from.
type Cell struct {
	Model     string `json:"model"`
	Family    string `json:"family"`
	Arch      string `json:"architecture"`
	Precision string `json:"precision"`
	Key       string `json:"key"`
	Params    int64  `json:"params"`
	// ArtifactBytes is the safetensors artifact (the source checkpoint for
	// fp32); ONNXBytes the exported model.onnx + model.onnx.data.
	ArtifactBytes int64   `json:"artifact_bytes"`
	ONNXBytes     int64   `json:"onnx_bytes"`
	SizeRatio     float64 `json:"size_ratio"` // ONNX bytes / FP32 ONNX bytes
	BitsPerParam  float64 `json:"bits_per_param"`
	// Latency at each batch size (p50 ms), the FP32 baseline's measured in
	// the same run, and the speedup at the first batch size.
	Batches      []BatchCell `json:"batches"`
	P50Ms        float64     `json:"p50_ms"`
	BaselineP50  float64     `json:"baseline_p50_ms"`
	Speedup      float64     `json:"speedup"`
	Throughput   float64     `json:"throughput_sps"` // at the largest batch size
	PeakMB       *float64    `json:"peak_rss_mb"`
	BaselineMB   *float64    `json:"baseline_peak_rss_mb"`
	MemReduction *float64    `json:"memory_reduction"` // 1 - peak/baseline peak
	Top1         *float64    `json:"top1_agreement"`
	Top5         *float64    `json:"top5_agreement"`
	CosineMean   float64     `json:"cosine_mean"`
	CosineMin    float64     `json:"cosine_min"`
	Accuracy     *float64    `json:"top1_accuracy"`      // with labelled images
	AccuracyDrop *float64    `json:"top1_accuracy_drop"` // percentage points
	Inputs       string      `json:"inputs"`
	// Calibration is what an int8-static cell was calibrated on (kind,
	// folder, sha256 of the samples used, count, skipped images).
	Calibration *quantize.SourceInfo `json:"calibration,omitempty"`
	// Auto is the search record of the auto column's mix (nil for the
	// other precisions).
	Auto   *convert.AutoRecord `json:"auto,omitempty"`
	Reused bool                `json:"-"`
	Verify *verify.Report      `json:"verify,omitempty"`
}

// BatchCell is one batch size's latency and throughput.
type BatchCell struct {
	Batch       int     `json:"batch"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	BaselineP50 float64 `json:"baseline_p50_ms"`
	Throughput  float64 `json:"throughput_sps"`
}

// cellKey hashes everything that changes a cell's numbers (see
// Options.cellKeyParts): the JSON of parts, sha256, hex.
func cellKey(parts ...any) string {
	b, _ := json.Marshal(parts)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// cachePath is where a finished cell is kept: content-addressed by its key,
// so a cell made from other bytes or settings can never be found there, and
// the cells/ directories of several runs (shards) can be pooled.
func cachePath(dir, key string) string {
	return filepath.Join(dir, "cells", key+".json")
}

// maxCellBytes bounds a cached cell file (a few KiB: one verify report).
const maxCellBytes = 16 << 20

// loadCell returns a cached cell when its key matches. The cell is
// relabelled with mi's name: the key holds the source's sha256, not its
// directory name, so the same checkpoint under another name reuses it.
func loadCell(path, key string, mi ModelInfo) (*Cell, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCellBytes+1))
	if err != nil || len(b) > maxCellBytes {
		return nil, false
	}
	var c Cell
	if json.Unmarshal(b, &c) != nil || c.Key != key {
		return nil, false
	}
	c.Model, c.Family, c.Arch, c.Params = mi.Name, mi.Family, mi.Arch, mi.Params
	c.Reused = true
	return &c, true
}

func saveCell(path string, c *Cell) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
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
