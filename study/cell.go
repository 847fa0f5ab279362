package study

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/internal/atomicfile"
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
	Batches      []BatchCell    `json:"batches"`
	P50Ms        float64        `json:"p50_ms"`
	BaselineP50  float64        `json:"baseline_p50_ms"`
	Speedup      float64        `json:"speedup"`
	Throughput   float64        `json:"throughput_sps"` // at the largest batch size
	PeakMB       *float64       `json:"peak_rss_mb"`
	BaselineMB   *float64       `json:"baseline_peak_rss_mb"`
	MemReduction *float64       `json:"memory_reduction"` // 1 - peak/baseline peak
	Top1         *float64       `json:"top1_agreement"`
	Top5         *float64       `json:"top5_agreement"`
	CosineMean   float64        `json:"cosine_mean"`
	CosineMin    float64        `json:"cosine_min"`
	Accuracy     *float64       `json:"top1_accuracy"`      // with labelled images
	AccuracyDrop *float64       `json:"top1_accuracy_drop"` // percentage points
	Inputs       string         `json:"inputs"`
	Reused       bool           `json:"-"`
	Verify       *verify.Report `json:"verify,omitempty"`
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

// cellKey hashes everything that changes a cell's numbers.
func cellKey(parts ...any) string {
	b, _ := json.Marshal(parts)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// cachePath is where a finished cell is kept.
func cachePath(dir, model, precision string) string {
	return filepath.Join(dir, "cells", model+"__"+precision+".json")
}

// loadCell returns a cached cell when its key matches.
func loadCell(path, key string) (*Cell, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var c Cell
	if json.Unmarshal(b, &c) != nil || c.Key != key {
		return nil, false
	}
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
