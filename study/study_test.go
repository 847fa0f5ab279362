package study

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

func fixtures(t *testing.T) string { return testenv.Fixtures(t, "reference") }

func opener(t *testing.T) verify.Opener {
	t.Helper()
	orttest.Require(t)
	return func(p string) (verify.Runner, error) { return ort.Open(p, ort.Options{IntraOpThreads: 1}) }
}

func quickOptions(t *testing.T, out string) Options {
	fx := fixtures(t)
	return Options{
		Sources: []string{filepath.Join(fx, "vit"), filepath.Join(fx, "deit-distilled")},
		Out:     out,
		Runtime: verify.Runtime{Open: opener(t), Device: "cpu", ORTVersion: ort.Version(), Threads: 1, BatchSizes: []int{1, 2}, Warmup: 1, Iters: 3},
		Inputs:  verify.Inputs{Samples: 4},
	}
}

// TestStudyReports runs a study over two tiny reference models at every
// precision and checks the reports against each other: every number in
// report.md is report.json's, formatted; the CSV parses with one row per
// cell and batch; the PNGs decode at the documented size.
func TestStudyReports(t *testing.T) {
	out := t.TempDir()
	r, err := Run(context.Background(), quickOptions(t, out))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 2*len(DefaultPrecisions) {
		t.Fatalf("%d cells", len(r.Cells))
	}
	back, err := ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, FileMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	rows := markdownRows(string(md), MarkdownColumns)
	if len(rows) != len(back.Cells) {
		t.Fatalf("report.md has %d matrix rows, report.json %d cells", len(rows), len(back.Cells))
	}
	for i, c := range back.Cells {
		want := CellRow(c)
		for j := range want {
			if rows[i][j] != want[j] {
				t.Errorf("row %d column %q: report.md %q, report.json gives %q", i, MarkdownColumns[j], rows[i][j], want[j])
			}
		}
		if c.Precision == "fp32" && (c.Speedup != 1 || c.CosineMean != 1) {
			t.Errorf("fp32 row: speedup %v cosine %v", c.Speedup, c.CosineMean)
		}
		if c.P50Ms <= 0 || c.ONNXBytes <= 0 {
			t.Errorf("%s/%s: missing measurement %+v", c.Model, c.Precision, c)
		}
	}
	f, err := os.Open(filepath.Join(out, FileCSV))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(back.Cells)*2 || strings.Join(recs[0], ",") != strings.Join(CSVColumns, ",") {
		t.Fatalf("csv: %d rows, header %v", len(recs), recs[0])
	}
	ww, wh := HeatmapSize(len(back.Models))
	for _, name := range []string{FileSpeedup, FileSize, FileAgree} {
		img := testenv.ReadPNG(t, filepath.Join(out, name))
		if b := img.Bounds(); b.Dx() != ww || b.Dy() != wh {
			t.Errorf("%s: %dx%d, want %dx%d", name, b.Dx(), b.Dy(), ww, wh)
		}
	}
	if len(back.Recommendations) != 2 || back.Recommendations[0].Precision == "" {
		t.Errorf("recommendations: %+v", back.Recommendations)
	}
}

// markdownRows returns the body rows of the table whose header is cols.
func markdownRows(md string, cols []string) [][]string {
	header := "| " + strings.Join(cols, " | ") + " |"
	lines := strings.Split(md, "\n")
	var out [][]string
	for i, l := range lines {
		if l != header {
			continue
		}
		for _, r := range lines[i+2:] {
			if !strings.HasPrefix(r, "|") {
				return out
			}
			cells := strings.Split(strings.Trim(r, "|"), " | ")
			for k := range cells {
				cells[k] = strings.TrimSpace(cells[k])
			}
			out = append(out, cells)
		}
	}
	return out
}

// TestStudyResume interrupts a study after its third finished cell and runs
// it again: the second run recomputes only the cells that were missing.
func TestStudyResume(t *testing.T) {
	out := t.TempDir()
	opt := quickOptions(t, out)
	opt.Precisions = []convert.Precision{convert.FP32, convert.Int8, convert.NF4}
	ctx, cancel := context.WithCancel(context.Background())
	var first []string
	opt.Log = func(l string) {
		first = append(first, l)
		if len(first) == 3 {
			cancel()
		}
	}
	if _, err := Run(ctx, opt); err == nil {
		t.Fatal("interrupted study returned no error")
	}
	var second []string
	opt.Log = func(l string) { second = append(second, l) }
	r, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	reused, done := 0, 0
	for _, l := range second {
		switch {
		case strings.HasPrefix(l, "reused "):
			reused++
		case strings.HasPrefix(l, "done "):
			done++
		}
	}
	if reused != 3 || done != len(r.Cells)-3 {
		t.Fatalf("second run: %d reused, %d computed of %d cells\nfirst: %q\nsecond: %q", reused, done, len(r.Cells), first, second)
	}
	// A third run with --force recomputes everything.
	opt.Force = true
	second = nil
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	for _, l := range second {
		if strings.HasPrefix(l, "reused ") {
			t.Fatalf("--force reused a cell: %s", l)
		}
	}
}

func TestRecommend(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &Report{Models: []ModelInfo{{Name: "m"}}, Cells: []*Cell{
		{Model: "m", Precision: "fp32", P50Ms: 10, ONNXBytes: 400, Top1: f(1), PeakMB: f(100)},
		{Model: "m", Precision: "int8", P50Ms: 5, ONNXBytes: 100, Top1: f(0.995), PeakMB: f(40)},
		{Model: "m", Precision: "nf4", P50Ms: 5.1, ONNXBytes: 60, Top1: f(0.9), PeakMB: f(50)},
	}}
	rec := recommend(r, Constraints{MaxTop1Drop: f(1)})
	if rec[0].Precision != "int8" {
		t.Fatalf("max drop 1pp: %+v", rec[0])
	}
	rec = recommend(r, Constraints{MaxTop1Drop: f(20), Prefer: "size"})
	if rec[0].Precision != "nf4" {
		t.Fatalf("prefer size: %+v", rec[0])
	}
	rec = recommend(r, Constraints{MaxLatencyMs: f(1)})
	if rec[0].Precision != "" || !strings.Contains(rec[0].Reason, "no precision") {
		t.Fatalf("impossible constraint: %+v", rec[0])
	}
}

// TestRecommendWording: without labels the reason says disagreement, not
// drop; with labels, accuracy drop; the tie rule is stated when it decided.
func TestRecommendWording(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &Report{Models: []ModelInfo{{Name: "m"}}, Cells: []*Cell{
		{Model: "m", Precision: "fp32", P50Ms: 10, BaselineP50: 10, Speedup: 1, ONNXBytes: 400, Top1: f(1)},
		{Model: "m", Precision: "fp16", P50Ms: 10.2, BaselineP50: 10, Speedup: 0.98, ONNXBytes: 200, Top1: f(1)},
	}}
	rec := recommend(r, Constraints{})[0]
	if rec.Precision != "fp16" || !strings.Contains(rec.Reason, "tie rule") || !strings.Contains(rec.Reason, "within 3%") {
		t.Fatalf("tie: %+v", rec)
	}
	if !strings.Contains(rec.Reason, "disagreement") || strings.Contains(rec.Reason, "drop") {
		t.Fatalf("unlabelled wording: %s", rec.Reason)
	}
	r.Cells[1].P50Ms = 12 // clearly slower: no tie, fp32 wins, no tie-rule text
	rec = recommend(r, Constraints{})[0]
	if rec.Precision != "fp32" || strings.Contains(rec.Reason, "tie rule") {
		t.Fatalf("no tie: %+v", rec)
	}
	r.Cells[1].AccuracyDrop = f(0.5)
	r.Cells[1].P50Ms = 5
	rec = recommend(r, Constraints{MaxTop1Drop: f(0.1)})[0]
	if rec.Precision != "fp32" {
		t.Fatalf("labelled constraint: %+v", rec)
	}
	r.Cells[0].AccuracyDrop = f(0)
	rec = recommend(r, Constraints{MaxTop1Drop: f(1)})[0]
	if rec.Precision != "fp16" || !strings.Contains(rec.Reason, "top-1 accuracy drop 0.50 pp") {
		t.Fatalf("labelled wording: %+v", rec)
	}
}

// TestRecommendWithinRun: latency is compared as each cell's p50 relative
// to its own run's FP32 p50, not as absolute milliseconds from different
// runs: nf4 at 6 ms in a run whose FP32 took 5 ms is slower than FP32,
// although 6 ms < the FP32 row's 10 ms (timed while the machine was busy).
func TestRecommendWithinRun(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &Report{Models: []ModelInfo{{Name: "m"}}, Cells: []*Cell{
		{Model: "m", Precision: "fp32", P50Ms: 10, BaselineP50: 10, Speedup: 1, ONNXBytes: 400, Top1: f(1)},
		{Model: "m", Precision: "nf4", P50Ms: 6, BaselineP50: 5, Speedup: 5.0 / 6, ONNXBytes: 60, Top1: f(1)},
	}}
	if rec := recommend(r, Constraints{})[0]; rec.Precision != "fp32" || !strings.Contains(rec.Reason, "relative to its own run's FP32") {
		t.Fatalf("%+v", rec)
	}
}

// TestRecommendAuto: an auto cell is a precision like the others — named
// when it is the smallest artifact meeting the constraints (prefer size, or
// tied on latency), with its mix and search in the reason, and passed over
// when it misses a constraint.
func TestRecommendAuto(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	auto := &convert.AutoRecord{Target: "top1_drop <= 0.5%", Reached: true, Stop: "target reached", Calibration: "calib",
		Mix: map[string]int{"int4": 14, "int8": 4}}
	r := &Report{Models: []ModelInfo{{Name: "m"}}, Cells: []*Cell{
		{Model: "m", Precision: "fp32", P50Ms: 10, BaselineP50: 10, ONNXBytes: 400, Top1: f(1)},
		{Model: "m", Precision: "int8", P50Ms: 5, BaselineP50: 10, ONNXBytes: 100, Top1: f(0.998)},
		{Model: "m", Precision: "int4", P50Ms: 5, BaselineP50: 10, ONNXBytes: 55, Top1: f(0.97)},
		{Model: "m", Precision: PrecisionAuto, P50Ms: 5.05, BaselineP50: 10, ONNXBytes: 70, Top1: f(0.996), Auto: auto},
	}}
	for _, prefer := range []string{"size", "latency"} {
		rec := recommend(r, Constraints{MaxTop1Drop: f(0.5), Prefer: prefer})[0]
		if rec.Precision != PrecisionAuto || !strings.Contains(rec.Reason, "auto mix int4×14 int8×4") ||
			!strings.Contains(rec.Reason, "top1_drop <= 0.5% reached") {
			t.Fatalf("prefer %s: %+v", prefer, rec)
		}
	}
	// A tighter constraint than the search's target: auto misses it.
	if rec := recommend(r, Constraints{MaxTop1Drop: f(0.3), Prefer: "size"})[0]; rec.Precision != "int8" {
		t.Fatalf("auto over the constraint: %+v", rec)
	}
}
