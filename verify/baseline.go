package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// RegressionGates compare a run with a stored report of an earlier one
// (verify --baseline-report PREV.json); a nil limit is not checked. Each is
// judged on the candidate: a positive change is a regression.
type RegressionGates struct {
	// MaxLatencyPct is how much slower (percent) the candidate's p50 may be
	// than the previous candidate's, at every batch size both runs timed.
	MaxLatencyPct *float64
	// MaxSizePct is how much larger (percent) the candidate's files may be.
	MaxSizePct *float64
	// MaxAgreementPct is how far (percentage points) the candidate's
	// quality may fall: labelled top-1 accuracy when both runs have labels,
	// else top-1 agreement with the baseline, else 100 × mean cosine.
	MaxAgreementPct *float64
	// AllowOtherMachine judges latency against a report from another
	// machine, ONNX Runtime, device or thread count (refused otherwise).
	AllowOtherMachine bool
}

func (g RegressionGates) any() bool {
	return g.MaxLatencyPct != nil || g.MaxSizePct != nil || g.MaxAgreementPct != nil
}

// Errors of --baseline-report.
var (
	// ErrPreviousReport is a --baseline-report file that cannot be read as
	// a verify report (exit 3).
	ErrPreviousReport = fault.New(fault.Invalid, "verify: invalid --baseline-report")
	// ErrOtherMachine is a latency gate against a report measured on
	// another machine or runtime without --allow-other-machine (exit 2).
	ErrOtherMachine = fault.New(fault.Usage, "verify: --baseline-report is from another machine")
)

// maxReportBytes bounds a stored report (a few KiB to a few MiB with many
// skipped images listed).
const maxReportBytes = 64 << 20

// LoadReport reads a report that `verify --json` wrote.
func LoadReport(path string) (*Report, error) {
	// A FIFO or device would block or never end: refuse before opening.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPreviousReport, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrPreviousReport, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPreviousReport, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPreviousReport, path, err)
	}
	if len(b) > maxReportBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrPreviousReport, path, maxReportBytes)
	}
	return parseReport(path, b)
}

// parseReport decodes and checks a stored report.
func parseReport(path string, b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPreviousReport, path, err)
	}
	if r.Format != ReportFormat {
		return nil, fmt.Errorf("%w: %s has format %q, want %q (a `quantpack verify --json` report)", ErrPreviousReport, path, r.Format, ReportFormat)
	}
	if len(r.Candidate.Batches) == 0 {
		return nil, fmt.Errorf("%w: %s has no timed batch sizes", ErrPreviousReport, path)
	}
	for _, b := range r.Candidate.Batches {
		p := b.LatencyMs.P50
		if p < 0 || p != p || p > 1e12 {
			return nil, fmt.Errorf("%w: %s: candidate p50 %v ms at batch %d", ErrPreviousReport, path, p, b.Batch)
		}
	}
	if r.Candidate.SizeBytes < 0 {
		return nil, fmt.Errorf("%w: %s: candidate size %d bytes", ErrPreviousReport, path, r.Candidate.SizeBytes)
	}
	return &r, nil
}

// Fingerprint is what must match for two runs' latencies to be compared:
// the machine (CPU model and inference-relevant flags, logical CPUs, OS,
// architecture), the ONNX Runtime version, device, execution provider
// library and intra-op threads.
type Fingerprint struct {
	CPUModel    string   `json:"cpu_model"`
	CPUFlags    []string `json:"cpu_flags"`
	LogicalCPUs int      `json:"logical_cpus"`
	OS          string   `json:"os"`
	Arch        string   `json:"arch"`
	ORTVersion  string   `json:"ort_version"`
	Device      string   `json:"device"`
	EPLibrary   string   `json:"ep_library,omitempty"`
	Threads     int      `json:"threads"`
}

// FingerprintOf is the fingerprint a report records.
func FingerprintOf(r *Report) Fingerprint {
	p := r.Provenance
	return Fingerprint{CPUModel: p.CPUModel, CPUFlags: p.CPUFlags, LogicalCPUs: p.LogicalCPUs, OS: p.OS, Arch: p.Arch,
		ORTVersion: p.ORTVersion, Device: p.Device, EPLibrary: p.EPLibrary, Threads: p.Threads}
}

// fingerprint is this machine's, with opt's runtime settings.
func (o *Options) fingerprint() Fingerprint {
	p := CollectProvenance()
	return Fingerprint{CPUModel: p.CPUModel, CPUFlags: p.CPUFlags, LogicalCPUs: p.LogicalCPUs, OS: p.OS, Arch: p.Arch,
		ORTVersion: o.ORTVersion, Device: o.Device, EPLibrary: o.EPLibrary, Threads: o.Threads}
}

// Diff lists, in words, how g differs from f (empty when they match).
func (f Fingerprint) Diff(g Fingerprint) []string {
	var d []string
	add := func(what string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			d = append(d, fmt.Sprintf("%s %v here, %v in the previous report", what, a, b))
		}
	}
	add("CPU", f.CPUModel, g.CPUModel)
	add("CPU flags", strings.Join(f.CPUFlags, " "), strings.Join(g.CPUFlags, " "))
	add("logical CPUs", f.LogicalCPUs, g.LogicalCPUs)
	add("OS/arch", f.OS+"/"+f.Arch, g.OS+"/"+g.Arch)
	add("ONNX Runtime", f.ORTVersion, g.ORTVersion)
	add("device", f.Device, g.Device)
	add("EP library", f.EPLibrary, g.EPLibrary)
	add("threads", f.Threads, g.Threads)
	return d
}

// checkPrevious refuses regression gates without a previous report, and a
// latency gate against another machine's report unless allowed. It runs
// before anything is measured.
func (o *Options) checkPrevious() error {
	g := o.Regression
	if o.Previous == nil {
		if g.any() {
			return fmt.Errorf("%w: --max-latency-regression, --max-size-regression and --max-agreement-regression need --baseline-report", ErrOption)
		}
		return nil
	}
	if g.MaxLatencyPct == nil {
		return nil
	}
	common := 0
	for _, b := range o.Previous.Candidate.Batches {
		if slices.Contains(o.BatchSizes, b.Batch) {
			common++
		}
	}
	if common == 0 {
		return fmt.Errorf("%w: --max-latency-regression: %s timed no batch size of this run (%v)", ErrOption, o.PreviousPath, o.BatchSizes)
	}
	if d := o.fingerprint().Diff(FingerprintOf(o.Previous)); len(d) > 0 && !g.AllowOtherMachine {
		return fmt.Errorf("%w: %s: %s; latencies are not comparable across machines and runtimes (pass --allow-other-machine to judge them anyway)",
			ErrOtherMachine, o.PreviousPath, strings.Join(d, "; "))
	}
	return nil
}

// Regression sets this run's candidate beside a previous report's.
type Regression struct {
	// Previous is the --baseline-report path; PreviousCandidateSHA256 its
	// candidate's model.onnx.
	Previous                string `json:"previous"`
	PreviousCandidateSHA256 string `json:"previous_model_sha256"`
	// SameMachine is false when the fingerprints differ; Differences says
	// how (latency was then judged only with --allow-other-machine).
	SameMachine bool            `json:"same_machine"`
	Differences []string        `json:"differences"`
	Rows        []RegressionRow `json:"rows"`
}

// RegressionRow is one figure of both runs. Change is positive when this
// run is worse: percent for latency and size, percentage points for
// quality.
type RegressionRow struct {
	Metric   string  `json:"metric"`
	Previous float64 `json:"previous"`
	Current  float64 `json:"current"`
	Change   float64 `json:"change"`
	Unit     string  `json:"unit"` // "%" or "pp"
	// Noise states the figures' own uncertainty: the block-p50 spread of
	// each run, or the 95% intervals.
	Noise string `json:"noise,omitempty"`
	// Gate is the flag judging this row ("" when none), Limit its value.
	Gate   string   `json:"gate,omitempty"`
	Limit  *float64 `json:"limit,omitempty"`
	Passed *bool    `json:"passed,omitempty"`
}

// compareWithPrevious fills the regression rows and adds their gates to
// r.Gates.
func compareWithPrevious(r, prev *Report, path string, g RegressionGates) *Regression {
	fp := FingerprintOf(r)
	reg := &Regression{Previous: path, PreviousCandidateSHA256: prev.Provenance.CandidateSHA256,
		Differences: fp.Diff(FingerprintOf(prev))}
	reg.SameMachine = len(reg.Differences) == 0
	if reg.Differences == nil {
		reg.Differences = []string{}
	}
	gate := func(row RegressionRow, name string, limit *float64, sentence string) {
		if limit != nil {
			ok := row.Change <= *limit // NaN fails
			row.Gate, row.Limit, row.Passed = name, limit, &ok
			s := fmt.Sprintf("%s: %s, %+.3g%s (max %g%s)", name, sentence, row.Change, row.Unit, *limit, row.Unit)
			if ok {
				r.Gates.Passed = append(r.Gates.Passed, s)
			} else {
				r.Gates.Failed = append(r.Gates.Failed, s)
			}
		}
		reg.Rows = append(reg.Rows, row)
	}
	for _, pb := range prev.Candidate.Batches {
		for _, cb := range r.Candidate.Batches {
			if cb.Batch != pb.Batch {
				continue
			}
			row := RegressionRow{Metric: fmt.Sprintf("candidate p50 ms, batch %d", cb.Batch), Previous: pb.LatencyMs.P50,
				Current: cb.LatencyMs.P50, Unit: "%", Change: pctChange(pb.LatencyMs.P50, cb.LatencyMs.P50)}
			row.Noise = fmt.Sprintf("block-p50 spread %s here, %s before", spreadText(r.Statistics, cb.Batch), spreadText(prev.Statistics, cb.Batch))
			gate(row, "max-latency-regression", g.MaxLatencyPct,
				fmt.Sprintf("candidate p50 %.4g ms at batch %d, previously %.4g ms", cb.LatencyMs.P50, cb.Batch, pb.LatencyMs.P50))
		}
	}
	size := RegressionRow{Metric: "candidate bytes", Previous: float64(prev.Candidate.SizeBytes), Current: float64(r.Candidate.SizeBytes),
		Unit: "%", Change: pctChange(float64(prev.Candidate.SizeBytes), float64(r.Candidate.SizeBytes))}
	gate(size, "max-size-regression", g.MaxSizePct,
		fmt.Sprintf("candidate %d bytes, previously %d", r.Candidate.SizeBytes, prev.Candidate.SizeBytes))
	metric, cur, old, noise := qualityOf(r, prev)
	q := RegressionRow{Metric: metric, Previous: old, Current: cur, Unit: "pp", Change: old - cur, Noise: noise}
	gate(q, "max-agreement-regression", g.MaxAgreementPct, fmt.Sprintf("%s %.4g, previously %.4g", metric, cur, old))
	return reg
}

// pctChange is (cur − prev) / prev in percent. A previous 0 (never
// written by verify: p50 and sizes are positive) counts as +100% when cur
// is not 0, so that it fails any sensible limit rather than encode an Inf.
func pctChange(prev, cur float64) float64 {
	if prev == 0 {
		if cur == 0 {
			return 0
		}
		return 100
	}
	return 100 * (cur - prev) / prev
}

func spreadText(s *Statistics, batch int) string {
	if l, ok := s.spreadOf("candidate", batch); ok && len(l.BlockP50) > 0 {
		return fmt.Sprintf("%.1f%% over %d blocks", l.SpreadPct, len(l.BlockP50))
	}
	return "unknown"
}

// qualityOf picks the quality figure both reports have, in percent.
func qualityOf(r, prev *Report) (metric string, cur, old float64, noise string) {
	iv := func(i *Interval) string {
		if i == nil {
			return "?"
		}
		return fmt.Sprintf("[%.1f, %.1f]", 100*i.Lower, 100*i.Upper)
	}
	var sc, sp *Statistics = r.Statistics, prev.Statistics
	if sc == nil {
		sc = &Statistics{}
	}
	if sp == nil {
		sp = &Statistics{}
	}
	switch {
	case r.Accuracy != nil && prev.Accuracy != nil:
		return "candidate labelled top-1 accuracy %", 100 * r.Accuracy.CandidateTop1, 100 * prev.Accuracy.CandidateTop1,
			fmt.Sprintf("95%% intervals %s here, %s before", iv(sc.CandidateAccuracy), iv(sp.CandidateAccuracy))
	case r.Agreement.Top1 != nil && prev.Agreement.Top1 != nil:
		return "top-1 agreement with the baseline %", 100 * *r.Agreement.Top1, 100 * *prev.Agreement.Top1,
			fmt.Sprintf("95%% intervals %s here, %s before", iv(sc.Top1Agreement), iv(sp.Top1Agreement))
	}
	return "100 × mean cosine", 100 * r.Agreement.CosineMean, 100 * prev.Agreement.CosineMean, ""
}

// regressionMarkdown writes the side-by-side table.
func regressionMarkdown(b *strings.Builder, reg *Regression) {
	fmt.Fprintf(b, "\n### Against the previous report (%s)\n\n", reg.Previous)
	if !reg.SameMachine {
		fmt.Fprintf(b, "**Another machine or runtime**: %s. Latency changes are not comparable.\n\n", strings.Join(reg.Differences, "; "))
	}
	b.WriteString("| metric | previous | this run | change | noise | gate |\n|---|---:|---:|---:|---|---|\n")
	for _, row := range reg.Rows {
		g := "-"
		if row.Passed != nil {
			verdict := "passed"
			if !*row.Passed {
				verdict = "**FAILED**"
			}
			g = fmt.Sprintf("%s ≤ %g%s: %s", row.Gate, *row.Limit, row.Unit, verdict)
		}
		fmt.Fprintf(b, "| %s | %.6g | %.6g | %+.2f%s | %s | %s |\n", row.Metric, row.Previous, row.Current, row.Change, row.Unit, orDash(row.Noise), g)
	}
}

// statisticsMarkdown writes the intervals, KL percentiles and spreads.
func statisticsMarkdown(b *strings.Builder, s *Statistics) {
	if s == nil {
		return
	}
	b.WriteString("\n### Uncertainty\n\n")
	line := func(name string, iv *Interval) {
		if iv != nil {
			fmt.Fprintf(b, "- %s: %.2f%% (%d/%d), 95%% Wilson interval [%.2f%%, %.2f%%]\n", name, 100*iv.Estimate, iv.Successes,
				iv.Trials, 100*iv.Lower, 100*iv.Upper)
		}
	}
	line("top-1 agreement", s.Top1Agreement)
	line("baseline top-1 accuracy", s.BaselineAccuracy)
	line("candidate top-1 accuracy", s.CandidateAccuracy)
	if k := s.KLDivergence; k != nil {
		fmt.Fprintf(b, "- KL divergence per sample (nats, %d samples): median %.4g, p99 %.4g, p99.9 %.4g, max %.4g\n",
			k.Samples, k.Median, k.P99, k.P999, k.Max)
	}
	for _, l := range s.Latency {
		if len(l.BlockP50) > 1 {
			fmt.Fprintf(b, "- %s p50 at batch %d: %.4g ms, spread %.1f%% across %d alternating blocks\n", l.Model, l.Batch, l.P50, l.SpreadPct, len(l.BlockP50))
		}
	}
}
