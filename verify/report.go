package verify

import (
	"fmt"
	"math"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

// ReportFormat identifies the JSON document `quantpack verify --json`
// prints. Its schema is docs/verify.md; a change that removes or renames a
// member bumps the number.
const ReportFormat = "quantpack-verify/1"

// Report is the result of Compare: what `quantpack verify --json` prints.
// Every member is documented in docs/verify.md. Members that the CLI
// contract (docs/cli.md) names are always present; accuracy is null
// without labelled images.
type Report struct {
	Format     string          `json:"format"`
	Device     string          `json:"device"`
	ORTVersion string          `json:"ort_version"`
	Baseline   ModelReport     `json:"baseline"`
	Candidate  ModelReport     `json:"candidate"`
	Speedup    float64         `json:"speedup"`
	SizeRatio  float64         `json:"size_ratio"`
	Agreement  Agreement       `json:"agreement"`
	Accuracy   *AccuracyReport `json:"accuracy"`
	Gates      GateResults     `json:"gates"`
	Inputs     InputsReport    `json:"inputs"`
	Placement  PlacementReport `json:"placement"`
	Memory     MemoryReport    `json:"memory"`
	Provenance RunProvenance   `json:"provenance"`
	// Statistics are the figures with their uncertainty (interval.go).
	Statistics *Statistics `json:"statistics,omitempty"`
	// Regression compares this run with --baseline-report's (baseline.go).
	Regression *Regression `json:"regression,omitempty"`
	// Layers ranks the candidate's layers by the error each introduces
	// (layers.go), when a gate failed or verify --layers asked; LayerDiff
	// says how they were measured.
	Layers    []LayerDelta `json:"layers,omitempty"`
	LayerDiff *LayerDiff   `json:"layer_diff,omitempty"`
}

// ModelReport is one model's figures. LatencyMs, ThroughputSPS, PeakRSSMB
// and GPUMB repeat the first batch size's entry of Batches, so that the
// contract's baseline.latency_ms.p50 reads without an index.
type ModelReport struct {
	Path          string          `json:"path"`
	Model         string          `json:"model"`
	SizeBytes     int64           `json:"size_bytes"`
	Files         []manifest.File `json:"files"`
	Output        string          `json:"output"`
	LatencyMs     LatencyStats    `json:"latency_ms"`
	ThroughputSPS float64         `json:"throughput_sps"`
	PeakRSSMB     *float64        `json:"peak_rss_mb"`
	GPUMB         *float64        `json:"gpu_mb"`
	Batches       []BatchReport   `json:"batches"`
}

// BatchReport is one batch size's timing and memory.
type BatchReport struct {
	Batch         int          `json:"batch"`
	LatencyMs     LatencyStats `json:"latency_ms"`
	ThroughputSPS float64      `json:"throughput_sps"`
	// PeakRSSMB is the measuring child's peak resident memory minus the
	// runtime's own (MemoryReport.RuntimeRSSMB): what loading and running
	// this model at this batch size costs. Null when memory was not
	// measured.
	PeakRSSMB *float64 `json:"peak_rss_mb"`
	// PeakRSSTotalMB is the child's whole peak, runtime included.
	PeakRSSTotalMB *float64 `json:"peak_rss_total_mb"`
	// GPUMB is the GPU memory the measuring child held right after its
	// runs, its session still open (NVML; see MemoryReport.GPUMethod).
	// Null on the CPU, without memory measurement, or when NVML could not
	// tell (MemoryReport.GPUNote says why).
	GPUMB *float64 `json:"gpu_mb"`
}

// MemoryReport says how memory was measured.
type MemoryReport struct {
	Measured bool `json:"measured"`
	// RuntimeRSSMB is the peak RSS of a child that only initialises ONNX
	// Runtime, subtracted from every model's figure.
	RuntimeRSSMB *float64 `json:"runtime_rss_mb"`
	// Method is "child-vmhwm" (the child's own VmHWM) or "child-rusage"
	// (ru_maxrss, an upper bound) or "" when not measured.
	Method string `json:"method"`
	Note   string `json:"note,omitempty"`
	// GPUMethod is "nvml-process" when at least one model child's GPU
	// memory was read through NVML, else "".
	GPUMethod string `json:"gpu_method"`
	// GPUNote says what the GPU figures are, or why there are none.
	GPUNote string `json:"gpu_note"`
}

// InputsReport says what the models were compared on.
type InputsReport struct {
	// Kind is "synthetic" or "images".
	Kind string `json:"kind"`
	// Dir is the image folder (empty for synthetic inputs).
	Dir string `json:"dir,omitempty"`
	// Total is how many inputs were tried, Used how many both models ran
	// on, Skipped how many images failed to decode or preprocess.
	Total   int            `json:"total"`
	Used    int            `json:"used"`
	Skipped int            `json:"skipped"`
	Errors  []SkippedImage `json:"errors"`
	// Labelled is the number of used inputs with a class.
	Labelled int `json:"labelled"`
	// Seed is the synthetic inputs' seed.
	Seed   uint64 `json:"seed"`
	Height int    `json:"height"`
	Width  int    `json:"width"`
	// Preprocessor is where the preprocessing came from.
	Preprocessor string `json:"preprocessor"`
	// TimingInputs says what the timed runs were fed.
	TimingInputs string `json:"timing_inputs"`
}

// PlacementReport is the node placement of each model's session; null for
// a runner that cannot report it.
type PlacementReport struct {
	Baseline  *Placement `json:"baseline"`
	Candidate *Placement `json:"candidate"`
}

// RunProvenance is what a result needs to be reproduced and compared.
type RunProvenance struct {
	Provenance
	ORTVersion string `json:"ort_version"`
	Device     string `json:"device"`
	EPLibrary  string `json:"ep_library,omitempty"`
	Threads    int    `json:"threads"`
	BatchSizes []int  `json:"batch_sizes"`
	Warmup     int    `json:"warmup"`
	Iters      int    `json:"iters"`
	// BaselineSHA256 and CandidateSHA256 are the sha256 of each model.onnx;
	// ModelReport.Files has every file's.
	BaselineSHA256  string `json:"baseline_sha256"`
	CandidateSHA256 string `json:"candidate_sha256"`
}

// GateResults lists each gate that was set, as a sentence with the
// measured value and the limit.
type GateResults struct {
	Passed []string `json:"passed"`
	Failed []string `json:"failed"`
}

// Gates are the pass/fail limits of a run; a nil field is not checked.
type Gates struct {
	// MaxTop1Drop is in percentage points of labelled top-1 accuracy;
	// without labels it applies to top-1 disagreement (100 − agreement%).
	MaxTop1Drop *float64
	// MinCosine applies to the minimum cosine over the samples.
	MinCosine *float64
	// MaxLatencyMs applies to the candidate's p50 at every batch size.
	MaxLatencyMs *float64
	// MinSpeedup applies to baseline p50 / candidate p50 at the first
	// batch size.
	MinSpeedup *float64
	// MaxSizeRatio applies to candidate bytes / baseline bytes.
	MaxSizeRatio *float64
	// OnBound judges MaxTop1Drop on the pessimistic end of the 95% Wilson
	// interval (Statistics.top1DropBound), so that few samples cannot
	// pass by luck.
	OnBound bool
}

// GateError is a run whose gates failed. It wraps fault.ErrGate (exit 5).
type GateError struct {
	Failed []string
}

func (e *GateError) Error() string {
	return fmt.Sprintf("%v: %s", fault.ErrGate, strings.Join(e.Failed, "; "))
}

// Unwrap returns fault.ErrGate.
func (e *GateError) Unwrap() error { return fault.ErrGate }

// evaluate checks g against r and fills r.Gates.
func (g Gates) evaluate(r *Report) {
	r.Gates = GateResults{Passed: []string{}, Failed: []string{}}
	add := func(ok bool, format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if ok {
			r.Gates.Passed = append(r.Gates.Passed, s)
		} else {
			r.Gates.Failed = append(r.Gates.Failed, s)
		}
	}
	if g.MaxTop1Drop != nil && g.OnBound {
		if d, what, ok := r.Statistics.top1DropBound(r); ok {
			add(d <= *g.MaxTop1Drop, "top1-drop: %.3g pp %s (max %g)", d, what, *g.MaxTop1Drop)
		} else {
			add(false, "top1-drop: not measurable, the models output embeddings, not logits (max %g)", *g.MaxTop1Drop)
		}
	} else if g.MaxTop1Drop != nil {
		switch {
		case r.Accuracy != nil:
			d := r.Accuracy.Drop
			add(d <= *g.MaxTop1Drop, "top1-drop: %.3g pp (max %g)", d, *g.MaxTop1Drop)
		case r.Agreement.Top1 != nil:
			// Rounded to 1e-9 pp so that 98% agreement is a 2 pp drop, not
			// 2.0000000000000018.
			d := math.Round(100*(1-*r.Agreement.Top1)*1e9) / 1e9
			add(d <= *g.MaxTop1Drop, "top1-drop: %.3g pp disagreement with the baseline, no labels (max %g)", d, *g.MaxTop1Drop)
		default:
			add(false, "top1-drop: not measurable, the models output embeddings, not logits (max %g)", *g.MaxTop1Drop)
		}
	}
	if g.MinCosine != nil {
		c := r.Agreement.CosineMin
		// NaN compares false, so a NaN cosine fails the gate.
		add(c >= *g.MinCosine, "min-cosine: %.8g (min %g)", c, *g.MinCosine)
	}
	if g.MaxLatencyMs != nil {
		for _, b := range r.Candidate.Batches {
			add(b.LatencyMs.P50 <= *g.MaxLatencyMs, "max-latency-ms: candidate p50 %.4g ms at batch %d (max %g)", b.LatencyMs.P50, b.Batch, *g.MaxLatencyMs)
		}
	}
	if g.MinSpeedup != nil {
		add(r.Speedup >= *g.MinSpeedup, "min-speedup: %.3gx at batch %d (min %g)", r.Speedup, r.Candidate.Batches[0].Batch, *g.MinSpeedup)
	}
	if g.MaxSizeRatio != nil {
		add(r.SizeRatio <= *g.MaxSizeRatio, "max-size-ratio: %.4g (max %g)", r.SizeRatio, *g.MaxSizeRatio)
	}
}
