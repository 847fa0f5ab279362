package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/quantpack/quantpack/study"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func init() { register(newStudyCommand()) }

func newStudyCommand() *cli.Command {
	return &cli.Command{
		Name:      "study",
		Usage:     "the model × precision matrix: convert, export and verify every precision of every model, with reports",
		ArgsUsage: "SRC... -o REPORTDIR",
		Description: `For each Hugging Face checkpoint SRC, study exports FP32 and each precision,
verifies every precision against the model's own FP32 export on ONNX Runtime
(same inputs, latency measured in the same run) and writes into REPORTDIR:

   report.md          the seed study's tables, every number measured: size and
                      reduction, bits/param, p50 latency, speedup, throughput,
                      peak memory and reduction, top-1 agreement, cosine,
                      labelled accuracy with --images; per-family summary;
                      the recommended precision per model with the reason
   report.csv         one row per model, precision and batch size
   report.json        every raw number, the full verify reports, provenance
   heatmap.png        speedup (models × precisions); heatmap-size.png and
                      heatmap-agreement.png beside it
   cells/, work/      finished cells and the exported models

A re-run reuses every finished cell whose inputs and settings are unchanged
(an interrupted study resumes); --force recomputes them.

Recommendation: among the precisions that meet --max-latency-ms (p50 at the
first batch size), --max-memory-mb (peak RSS) and --max-top1-drop (percentage
points; top-1 disagreement with FP32 when there are no labels), the fastest
(--prefer latency), smallest (size) or leanest (memory).

--sensitivity int4 (or int8, nf4) adds, per model, the per-layer report of
quantpack sensitivity (REPORTDIR/sensitivity-N-NAME/: Markdown, CSV, JSON and
a layers × metric heatmap) on --calib-images, else --images, else --samples
synthetic inputs.

Example:
   quantpack synth --preset deit-tiny-patch16-224 -o deit-tiny
   quantpack study deit-tiny -o report --batch 1,8 --max-top1-drop 1

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report directory", Required: true},
			&cli.StringFlag{Name: "precisions", Value: strings.Join(study.DefaultPrecisions, ","), Usage: "comma-separated precisions"},
			&cli.StringFlag{Name: "int8-mode", Value: "dynamic", Usage: "int8 export form: dynamic or qdq"},
			&cli.StringFlag{Name: "device", Value: ort.DeviceCPU, Usage: "cpu or cuda"},
			&cli.StringFlag{Name: "ep-library", Usage: "plugin execution provider library (with --device cuda)"},
			&cli.StringFlag{Name: "batch", Value: "1", Usage: "comma-separated batch sizes"},
			&cli.IntFlag{Name: "warmup", Value: verify.DefaultWarmup, Usage: "untimed runs per model and batch size"},
			&cli.IntFlag{Name: "iters", Value: verify.DefaultIters, Usage: "timed runs per model and batch size"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (default: physical cores)"},
			&cli.StringFlag{Name: "images", Usage: "ImageFolder to compare on (default: synthetic inputs)"},
			&cli.StringFlag{Name: "labels", Usage: "class names file"},
			&cli.IntFlag{Name: "samples", Value: verify.DefaultSamples, Usage: "synthetic inputs without --images"},
			&cli.Float64Flag{Name: "max-latency-ms", Usage: "recommendation constraint: p50 latency"},
			&cli.Float64Flag{Name: "max-memory-mb", Usage: "recommendation constraint: peak RSS"},
			&cli.Float64Flag{Name: "max-top1-drop", Usage: "recommendation constraint: top-1 drop in percentage points"},
			&cli.StringFlag{Name: "prefer", Value: "latency", Usage: "among passing precisions: latency, size or memory"},
			&cli.BoolFlag{Name: "force", Usage: "recompute cached cells"},
			&cli.BoolFlag{Name: "no-memory", Usage: "skip memory measurement"},
			&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library"},
			&cli.StringFlag{Name: "sensitivity", Usage: "also write a per-layer sensitivity report per model at this precision (int8, int4, nf4) into REPORTDIR/sensitivity-N-NAME"},
			&cli.StringFlag{Name: "calib-images", Usage: "--sensitivity inputs (default: --images, else --samples synthetic)"},
			&cli.BoolFlag{Name: "json", Usage: "print report.json on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("study needs at least one SRC")
			}
			switch c.String("prefer") {
			case "latency", "size", "memory":
			default:
				return usagef("--prefer %q: want latency, size or memory", c.String("prefer"))
			}
			batches, err := parseBatches(c.String("batch"))
			if err != nil {
				return err
			}
			vo := verifyOptions{device: c.String("device"), epLibrary: c.String("ep-library"), ortLib: c.String("ort-lib"),
				threads: c.Int("threads"), seed: verify.DefaultSeed}
			if vo.device != ort.DeviceCPU && vo.device != ort.DeviceCUDA {
				return usagef("--device %q: want cpu or cuda", vo.device)
			}
			if err := vo.initORT(); err != nil {
				return err
			}
			opt := study.Options{Sources: c.Args().Slice(), Out: c.String("output"),
				Precisions: splitList(c.String("precisions")), Int8Mode: c.String("int8-mode"),
				Open: vo.opener(), Device: vo.device, EPLibrary: vo.epLibrary, ORTVersion: ort.Version(), Threads: vo.threads,
				BatchSizes: batches, Warmup: c.Int("warmup"), Iters: c.Int("iters"), Images: c.String("images"),
				Labels: c.String("labels"), Samples: c.Int("samples"), Force: c.Bool("force"),
				Constraints: study.Constraints{MaxLatencyMs: optFloat(c, "max-latency-ms"), MaxMemoryMB: optFloat(c, "max-memory-mb"),
					MaxTop1Drop: optFloat(c, "max-top1-drop"), Prefer: c.String("prefer")},
			}
			cells := len(opt.Sources) * len(opt.Precisions)
			if len(opt.Precisions) == 0 {
				cells = len(opt.Sources) * len(study.DefaultPrecisions)
			}
			log, done := studyLog(cells)
			defer done()
			opt.Log = log
			if !c.Bool("no-memory") {
				opt.Memory = vo.memoryProbe()
			}
			r, err := study.Run(c.Context, opt)
			if err != nil {
				return err
			}
			if err := studySensitivity(c, opt.Sources, opt.Out, log); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(os.Stdout, r)
			}
			printStudySummary(os.Stdout, r, opt.Out)
			return nil
		},
	}
}

func printStudySummary(w io.Writer, r *study.Report, dir string) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(study.MarkdownColumns, " | "))
	for range study.MarkdownColumns {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, c := range r.Cells {
		fmt.Fprintf(w, "| %s |\n", strings.Join(study.CellRow(c), " | "))
	}
	for _, rec := range r.Recommendations {
		p := rec.Precision
		if p == "" {
			p = "none"
		}
		fmt.Fprintf(w, "\nrecommended for %s: %s — %s", rec.Model, p, rec.Reason)
	}
	fmt.Fprintf(w, "\n\nreport: %s\n", filepath.Join(dir, study.FileMarkdown))
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func optFloat(c *cli.Context, name string) *float64 {
	if !c.IsSet(name) {
		return nil
	}
	v := c.Float64(name)
	return &v
}

// studyLog prints a line per finished cell; on a terminal the lines scroll
// above a progress bar counting the cells.
func studyLog(cells int) (func(string), func()) {
	if !stderrIsTerminal() {
		return func(line string) { fmt.Fprintln(os.Stderr, line) }, func() {}
	}
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
	bar := p.AddBar(int64(cells), mpb.PrependDecorators(decor.Name("study "), decor.CountersNoUnit("%d / %d cells")),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)))
	log := func(line string) {
		fmt.Fprintln(p, line)
		bar.Increment()
	}
	return log, func() {
		if !bar.Completed() {
			bar.Abort(false)
		}
		p.Wait()
	}
}
