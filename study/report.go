package study

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/verify"
)

// Report file names inside REPORTDIR.
const (
	FileMarkdown = "report.md"
	FileCSV      = "report.csv"
	FileJSON     = "report.json"
	FileSpeedup  = "heatmap.png"
	FileSize     = "heatmap-size.png"
	FileAgree    = "heatmap-agreement.png"
)

func writeReports(dir string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, FileJSON), append(b, '\n')); err != nil {
		return err
	}
	var md strings.Builder
	WriteMarkdown(&md, r)
	if err := atomicfile.WriteFile(filepath.Join(dir, FileMarkdown), []byte(md.String())); err != nil {
		return err
	}
	var cs strings.Builder
	if err := WriteCSV(&cs, r); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, FileCSV), []byte(cs.String())); err != nil {
		return err
	}
	return writeHeatmaps(dir, r)
}

// Column formats shared by report.md and the test that checks every number
// in it against report.json.
func fmtMs(v float64) string   { return strconv.FormatFloat(v, 'f', 3, 64) }
func fmtX(v float64) string    { return strconv.FormatFloat(v, 'f', 2, 64) }
func fmtMB(v int64) string     { return strconv.FormatFloat(float64(v)/1e6, 'f', 2, 64) }
func fmtPct(v float64) string  { return strconv.FormatFloat(100*v, 'f', 1, 64) }
func fmtCos(v float64) string  { return strconv.FormatFloat(v, 'f', 6, 64) }
func fmtBits(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func fmtSPS(v float64) string  { return strconv.FormatFloat(v, 'f', 1, 64) }
func fmtParams(v int64) string { return strconv.FormatFloat(float64(v)/1e6, 'f', 2, 64) }
func fmtOptMB(v *float64) string {
	return optional(v, func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) })
}
func fmtOptPct(v *float64) string { return optional(v, fmtPct) }

func optional(v *float64, f func(float64) string) string {
	if v == nil {
		return "—"
	}
	return f(*v)
}

// MarkdownColumns are the per-cell table's headers.
var MarkdownColumns = []string{"model", "precision", "params (M)", "ONNX MB", "size reduction %", "bits/param",
	"p50 ms", "FP32 p50 ms", "speedup", "throughput/s", "peak MB", "memory reduction %", "top-1 agree %", "cosine", "top-1 acc %"}

// CellRow is one cell's Markdown row, formatted as the columns say.
func CellRow(c *Cell) []string {
	return []string{c.Model, c.Precision, fmtParams(c.Params), fmtMB(c.ONNXBytes), fmtPct(1 - c.SizeRatio),
		fmtBits(c.BitsPerParam), fmtMs(c.P50Ms), fmtMs(c.BaselineP50), fmtX(c.Speedup), fmtSPS(c.Throughput), fmtOptMB(c.PeakMB),
		fmtOptPct(c.MemReduction), fmtOptPct(c.Top1), fmtCos(c.CosineMean), fmtOptPct(c.Accuracy)}
}

// WriteMarkdown writes report.md: the seed's performance matrix with every
// number measured, per-family summary, recommendations and provenance.
func WriteMarkdown(w io.Writer, r *Report) {
	s := r.Settings
	fmt.Fprintf(w, "# quantpack study\n\n")
	fmt.Fprintf(w, "%d models × %s on %s (ONNX Runtime %s, %d threads, %s), batch sizes %v, %d warm-up + %d timed runs; inputs: %s.\n\n",
		len(r.Models), strings.Join(s.Precisions, ", "), s.Device, s.ORTVersion, s.Threads, r.Provenance.CPUModel,
		s.BatchSizes, s.Warmup, s.Iters, s.Inputs)
	fmt.Fprintf(w, "Speedup is FP32 p50 / candidate p50 at batch %d, both measured in the same run: each row shows the "+
		"FP32 p50 of its own run beside its own p50 (\"FP32 p50 ms\"), and timings drift between runs on a shared machine, "+
		"so compare speedups rather than milliseconds across rows. Sizes are the ONNX files; "+
		"agreement and cosine are against the model's own FP32 export on the same inputs (measured, not simulated); "+
		"without labelled images there is no accuracy, and \"top-1 agree\" is agreement with FP32, not accuracy.\n\n", s.BatchSizes[0])
	if r.Shard != nil {
		fmt.Fprintf(w, "**Shard %s** of study %.12s: %d of the study's cells (%s). `quantpack study merge` combines the shards.\n\n",
			r.Shard.Shard, r.StudyID, len(r.Shard.Cells), strings.Join(r.Shard.Cells, ", "))
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "**Failed models** (their finished cells are below, the rest are missing):\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "- %s: %s\n", f.Model, strings.ReplaceAll(f.Error, "\n", " "))
		}
		fmt.Fprintln(w)
	}
	if len(r.Machines) > 1 {
		fmt.Fprintf(w, "**Merged from shards measured on %d different machines**: each speedup is a ratio within one run on one "+
			"machine, but absolute latencies, throughput and memory are not comparable across rows.\n\n", len(r.Machines))
		for _, m := range r.Machines {
			fmt.Fprintf(w, "- %s\n", m)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Performance matrix\n\n")
	writeTable(w, MarkdownColumns, func(row func([]string)) {
		for _, c := range r.Cells {
			row(CellRow(c))
		}
	})
	if slices.Contains(s.Precisions, PrecisionAuto) {
		fmt.Fprintf(w, "\nThe auto rows are `export --precision auto` mixes searched for %s; they have no safetensors "+
			"artifact, so their bits/param are those of their ONNX files (the other rows': their artifacts').\n", s.Auto)
	}
	if len(s.BatchSizes) > 1 {
		fmt.Fprintf(w, "\n## Latency per batch size (p50 ms, the same run's FP32 p50 ms, speedup)\n\n")
		cols := []string{"model", "precision"}
		for _, b := range s.BatchSizes {
			cols = append(cols, fmt.Sprintf("batch %d p50 ms", b), fmt.Sprintf("batch %d FP32 p50 ms", b), fmt.Sprintf("batch %d speedup", b))
		}
		writeTable(w, cols, func(row func([]string)) {
			for _, c := range r.Cells {
				cells := []string{c.Model, c.Precision}
				for _, b := range c.Batches {
					sp := 0.0
					if b.P50Ms > 0 {
						sp = b.BaselineP50 / b.P50Ms
					}
					cells = append(cells, fmtMs(b.P50Ms), fmtMs(b.BaselineP50), fmtX(sp))
				}
				row(cells)
			}
		})
	}
	fmt.Fprintf(w, "\n## Per family\n\n")
	writeTable(w, []string{"family", "precision", "models", "speedup (geomean)", "size reduction %", "top-1 agree %", "cosine"},
		func(row func([]string)) {
			for _, f := range r.Families {
				row([]string{f.Family, f.Precision, strconv.Itoa(f.Models), fmtX(f.Speedup), fmtPct(1 - f.SizeRatio),
					fmtOptPct(f.Top1), fmtCos(f.CosineMean)})
			}
		})
	fmt.Fprintf(w, "\n## Recommendation\n\n")
	k := r.Constraints
	fmt.Fprintf(w, "Constraints: max latency %s ms, max memory %s MB, max top-1 drop %s pp (top-1 disagreement with FP32 "+
		"when there are no labels); preference: %s. Tie rule: a passing precision within %.0f%% of the best score counts as "+
		"tied with it, and the smallest ONNX file among the tied wins.\n\n",
		optional(k.MaxLatencyMs, fmtG), optional(k.MaxMemoryMB, fmtG), optional(k.MaxTop1Drop, fmtG), orDefault(k.Prefer, "latency"),
		100*TieFraction)
	writeTable(w, []string{"model", "precision", "why"}, func(row func([]string)) {
		for _, rec := range r.Recommendations {
			p := rec.Precision
			if p == "" {
				p = "none"
			}
			row([]string{rec.Model, p, rec.Reason})
		}
	})
	fmt.Fprintf(w, "\n![speedup](%s) ![size](%s) ![agreement](%s)\n", FileSpeedup, FileSize, FileAgree)
	writeSensitivityMarkdown(w, r)
	fmt.Fprintf(w, "\nMachine: %s, %d cores, flags %s; quantpack %s; report.json has every raw number.\n",
		r.Provenance.CPUModel, r.Provenance.LogicalCPUs, strings.Join(r.Provenance.CPUFlags, " "), r.ToolVersion)
}

func fmtG(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func writeTable(w io.Writer, cols []string, rows func(func([]string))) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(cols, " | "))
	for range cols {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	rows(func(cells []string) {
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	})
}

// CSVColumns are report.csv's headers: raw numbers, full precision.
var CSVColumns = []string{"model", "family", "architecture", "precision", "params", "artifact_bytes", "onnx_bytes",
	"size_ratio", "bits_per_param", "batch", "p50_ms", "p90_ms", "p99_ms", "baseline_p50_ms", "speedup",
	"throughput_sps", "peak_rss_mb", "memory_reduction", "top1_agreement", "top5_agreement", "cosine_mean",
	"cosine_min", "top1_accuracy", "top1_accuracy_drop", "inputs"}

// WriteCSV writes one row per cell and batch size.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVColumns)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return f(*v)
	}
	for _, c := range r.Cells {
		for _, b := range c.Batches {
			sp := 0.0
			if b.P50Ms > 0 {
				sp = b.BaselineP50 / b.P50Ms
			}
			cw.Write([]string{c.Model, c.Family, c.Arch, c.Precision, strconv.FormatInt(c.Params, 10),
				strconv.FormatInt(c.ArtifactBytes, 10), strconv.FormatInt(c.ONNXBytes, 10), f(c.SizeRatio), f(c.BitsPerParam),
				strconv.Itoa(b.Batch), f(b.P50Ms), f(b.P90Ms), f(b.P99Ms), f(b.BaselineP50), f(sp), f(b.Throughput),
				opt(c.PeakMB), opt(c.MemReduction), opt(c.Top1), opt(c.Top5), f(c.CosineMean), f(c.CosineMin),
				opt(c.Accuracy), opt(c.AccuracyDrop), c.Inputs})
		}
	}
	cw.Flush()
	return cw.Error()
}

// maxReportBytes bounds a report.json (about 10 KB per cell: thousands of
// cells fit).
const maxReportBytes = 256 << 20

// ReadReport loads a report.json: a regular file of at most
// maxReportBytes.
func ReadReport(dir string) (*Report, error) {
	path := filepath.Join(dir, FileJSON)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxReportBytes {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", path, maxReportBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxReportBytes {
		return nil, fmt.Errorf("%s: over %d bytes", path, maxReportBytes)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// JUnitSuite is the study as a JUnit test suite: one case per model,
// failing when no precision meets the constraints (the message lists what
// each missed) or when the model failed.
func JUnitSuite(r *Report, seconds float64) verify.JUnitSuite {
	s := verify.JUnitSuite{Name: "quantpack study", Package: "quantpack.study", Seconds: seconds}
	if r.Shard != nil {
		s.Name += " shard " + r.Shard.Shard.String()
	}
	failed := map[string]string{}
	for _, f := range r.Failures {
		failed[f.Model] = f.Error
	}
	recs := map[string]Recommendation{}
	for _, rec := range r.Recommendations {
		recs[rec.Model] = rec
	}
	for _, m := range r.Models {
		c := verify.JUnitCase{Name: m.Name, Classname: "quantpack.study." + m.Family}
		rec, has := recs[m.Name]
		switch {
		case failed[m.Name] != "":
			c.Failure = m.Name + ": failed: " + failed[m.Name]
		case !has:
			continue // not in this shard
		case rec.Precision == "":
			c.Failure = m.Name + ": " + rec.Reason
		default:
			c.Details = "recommended " + rec.Precision + ": " + rec.Reason
		}
		s.Cases = append(s.Cases, c)
	}
	return s
}
