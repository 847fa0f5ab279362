package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/study"
	"github.com/quantpack/quantpack/verify"
)

func init() { register(newStudyCommand()) }

func newStudyCommand() *cli.Command {
	return &cli.Command{
		Name:      "study",
		Usage:     "the model × precision matrix: convert, export and verify every precision of every model, with reports",
		ArgsUsage: "SRC... -o REPORTDIR  |  study merge SHARDDIR... -o REPORTDIR",
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

Every SRC is checked before the first cell runs. If a model fails, the
others still run, the report holds every cell that was measured and names
the failed models, and the exit code is the failure's.

Cells are content-addressed: a cell's key is the checkpoint's sha256 (each
checkpoint is hashed once per run), the precision, every export and verify
option, the ONNX Runtime version and the machine. A re-run reuses every
finished cell whose key is unchanged (an interrupted study resumes; adding a
model runs only its cells); a changed checkpoint is a miss, and the FP32
baseline is exported again. --force recomputes everything.

Sharding for CI matrices: --shard I/N runs a deterministic slice of the cells
(balanced by checkpoint size; adding models at the end does not move earlier
cells), --shard auto takes I and N from GitLab's CI_NODE_INDEX/CI_NODE_TOTAL
or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with QUANTPACK_SHARD_TOTAL
(on GitHub Actions pass --shard ${{ matrix.shard }}/N). Then
"quantpack study merge SHARDDIR... -o REPORTDIR" writes the report a single
run would have; it refuses shards of another study (exit 2) and names
missing ones. docs/ci.md has working GitHub Actions and GitLab CI files.
--junit FILE writes one JUnit test case per model (failing when no precision
meets the constraints, or the model failed); on GitHub Actions report.md is
also appended to $GITHUB_STEP_SUMMARY.

Recommendation: among the precisions that meet --max-latency-ms (p50 at the
first batch size), --max-memory-mb (peak RSS) and --max-top1-drop (percentage
points; top-1 disagreement with FP32 when there are no labels), the fastest
(--prefer latency), smallest (size) or leanest (memory).

--calib-images DIR adds the column int8-static: the calibrated static INT8
form of export --int8-mode static (the model's FP32 export through quantize's
W8A8 QDQ pass, activation ranges from --calib-samples images of DIR,
preprocessed as the export says; method percentile). It sits after int8, or
where --precisions names it. Its cells are keyed by the images' bytes and the
pass's settings too; without --calib-images nothing changes.

--precisions fp32,int8,int4,auto adds an auto column: per model, export
--precision auto searches a per-layer mix of --auto-candidates that meets
--auto-max-top1-drop (default: the --max-top1-drop constraint) and/or
--auto-min-cosine on --calib-images (else synthetic inputs; never --images,
which it is then measured on), and the cell measures that export like any
other. The recommendation names it when it is the best passing precision —
with --prefer size, when it is the smallest artifact meeting the constraints.
Its cache key adds the target, candidates, budget and calibration content.

--sensitivity int4 (or int8, nf4) adds, per model, the per-layer report of
quantpack sensitivity (REPORTDIR/sensitivity-N-NAME/: Markdown, CSV, JSON and
a layers × metric heatmap) on --calib-images, else --images, else --samples
synthetic inputs; report.md shows each model's heatmap and its most
sensitive layers. It is cached like a cell (keyed by the checkpoint, the
precision and the inputs' content).

Example:
   quantpack synth --preset deit-tiny-patch16-224 -o deit-tiny
   quantpack study deit-tiny -o report --batch 1,8 --max-top1-drop 1
   quantpack study deit-tiny -o report --calib-images calib/ --images val/
   quantpack study deit-tiny vit-base -o shard-2 --shard 2/3
   quantpack study merge shard-1 shard-2 shard-3 -o report

` + exitCodeHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report `DIR` (required)"},
			&cli.StringFlag{Name: "shard", Usage: "run slice `I/N` of the cells (1 ≤ I ≤ N), or auto (from the CI's environment)"},
			junitFlag(),
			&cli.StringFlag{Name: "precisions", Value: joinPrecisions(study.DefaultPrecisions), Usage: "comma-separated `PRECISIONS` (and " + study.Int8Static + " with --calib-images)"},
			&cli.StringFlag{Name: "int8-mode", Value: "dynamic", Usage: "int8 export form `MODE`: dynamic or qdq"},
			&cli.Float64Flag{Name: "max-latency-ms", Usage: "recommendation constraint: p50 latency `MS`", DefaultText: "none"},
			&cli.Float64Flag{Name: "max-memory-mb", Usage: "recommendation constraint: peak RSS `MB`", DefaultText: "none"},
			&cli.Float64Flag{Name: "max-top1-drop", Usage: "recommendation constraint: top-1 drop `PP` in percentage points", DefaultText: "none"},
			&cli.StringFlag{Name: "prefer", Value: "latency", Usage: "among passing precisions, `BEST` by latency, size or memory"},
			&cli.BoolFlag{Name: "force", Usage: "recompute cached cells"},
			&cli.StringFlag{Name: "sensitivity", Usage: "also write a per-layer sensitivity report per model at precision `P` (int8, int4, nf4) into REPORTDIR/sensitivity-N-NAME"},
			&cli.StringFlag{Name: "calib-images", Usage: "calibration images `DIR`: adds the " + study.Int8Static + " column; the inputs of --sensitivity and of the auto column's search", DefaultText: "no " + study.Int8Static + "; sensitivity on --images, else synthetic; auto on synthetic"},
			&cli.Float64Flag{Name: "auto-max-top1-drop", Usage: "auto column: search target, top-1 drop `PP` on the calibration inputs", DefaultText: "--max-top1-drop"},
			&cli.Float64Flag{Name: "auto-min-cosine", Usage: "auto column: search target, mean logit cosine `C` with FP32", DefaultText: "none"},
			&cli.StringFlag{Name: "auto-candidates", Value: "int4,int8,fp16", Usage: "auto column: `PRECISIONS` a layer may take"},
			&cli.DurationFlag{Name: "auto-budget", Usage: "auto column: time limit `D` of each model's search", DefaultText: "none"},
			&cli.BoolFlag{Name: "json", Usage: "print report.json on stdout"},
		}, append(runtimeFlags(), exportStaticFlags()...)...),
		Subcommands: []*cli.Command{newStudyMergeCommand()},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("study needs at least one SRC")
			}
			if c.String("output") == "" {
				return usagef("study needs -o REPORTDIR")
			}
			shard, err := study.ParseShard(c.String("shard"), os.Getenv)
			if err != nil {
				return usageError(err)
			}
			switch c.String("prefer") {
			case "latency", "size", "memory":
			default:
				return usagef("--prefer %q: want latency, size or memory", c.String("prefer"))
			}
			precs, auto, err := studyPrecisions(c)
			if err != nil {
				return err
			}
			rt, err := runtimeOptionsFrom(c, "study")
			if err != nil {
				return err
			}
			if err := rt.checkInputs("study"); err != nil {
				return err
			}
			// Usage before the runtime: a flag mistake is exit 2 even without ONNX Runtime.
			sens, err := studySensitivity(c, rt.Images)
			if err != nil {
				return err
			}
			var autoOpt *study.AutoOptions
			if auto {
				if autoOpt, err = studyAuto(c); err != nil {
					return err
				}
			} else {
				for _, f := range []string{"auto-max-top1-drop", "auto-min-cosine", "auto-candidates", "auto-budget"} {
					if c.IsSet(f) {
						return usagef("--%s needs auto in --precisions", f)
					}
				}
			}
			if err := rt.initORT(); err != nil {
				return err
			}
			static, err := studyStatic(c, rt)
			if err != nil {
				return err
			}
			srcs, names, err := resolveSources(c, "study", c.Args().Slice())
			if err != nil {
				return err
			}
			opt := study.Options{Sources: srcs, Names: names, Out: outputPath(c),
				Precisions: precs, Int8Mode: c.String("int8-mode"), Runtime: rt.Runtime, Inputs: rt.Inputs,
				Static: static, Force: c.Bool("force"), Shard: shard,
				Constraints: study.Constraints{MaxLatencyMs: optFloat(c, "max-latency-ms"), MaxMemoryMB: optFloat(c, "max-memory-mb"),
					MaxTop1Drop: optFloat(c, "max-top1-drop"), Prefer: c.String("prefer")},
			}
			opt.Sensitivity, opt.Auto = sens, autoOpt
			cells := len(opt.Sources) * len(study.Columns(opt.Precisions, static != nil))
			if opt.Sensitivity != nil {
				cells += len(opt.Sources) // one line per model's sensitivity
			}
			log, done := studyLog(cells)
			defer done()
			opt.Log = log
			start := time.Now()
			r, err := study.Run(c.Context, opt)
			if r == nil {
				return failJUnit(c.String("junit"), "quantpack study", "quantpack.study", err, time.Since(start).Seconds())
			}
			return errors.Join(err, finishStudy(c, r, opt.Out, time.Since(start).Seconds()))
		},
	}
}

// studyStatic is the int8-static column's configuration: with
// --calib-images, export --int8-mode static's pass (same flags, same
// defaults), calibrated in ONNX Runtime with the study's threads; nil
// without.
func studyStatic(c *cli.Context, rt runtimeOptions) (*study.Static, error) {
	dir := c.String("calib-images")
	if dir == "" {
		return nil, nil
	}
	dir, err := resolveInput("study", "--calib-images", dir)
	if err != nil {
		return nil, err
	}
	open, err := quantizeOpener(rt.ortLib, rt.Threads)
	if err != nil {
		return nil, err
	}
	return &study.Static{Config: quantize.Config{CalibImages: dir, Samples: c.Int("calib-samples")}, Open: open}, nil
}

// finishStudy prints a study's summary (or JSON) and writes its CI outputs.
func finishStudy(c *cli.Context, r *study.Report, dir string, seconds float64) error {
	if err := writeJUnit(c.String("junit"), []verify.JUnitSuite{study.JUnitSuite(r, seconds)}); err != nil {
		return err
	}
	if os.Getenv(envStepSummary) != "" {
		md, err := os.ReadFile(filepath.Join(dir, study.FileMarkdown))
		if err != nil {
			return err
		}
		if err := appendStepSummary(md); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		return printJSON(os.Stdout, r)
	}
	printStudySummary(os.Stdout, r, dir)
	return nil
}

func newStudyMergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "combine the report directories of a sharded study (study --shard I/N) into one report",
		ArgsUsage: "SHARDDIR... -o REPORTDIR",
		Description: `Writes into REPORTDIR the report.md, report.csv, report.json, heatmaps and
recommendation that one unsharded run would have written, from the shards'
report.json files (nothing is measured again). Shards of different studies
(settings, constraints, models or checkpoint hashes differ) are refused with
exit 2; a missing shard is named with its cells (exit 2). Shards measured
on different machines are merged and the report lists the machines:
speedups stay ratios within one run, absolute latencies are not comparable.

Example:
   quantpack study merge shard-1 shard-2 shard-3 -o report --junit study.xml

` + exitCodeHelp,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError(err) },
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report directory (required)"},
			junitFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print report.json on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("study merge needs the shards' report directories")
			}
			if c.String("output") == "" {
				return usagef("study merge needs -o REPORTDIR")
			}
			r, err := study.Merge(c.Args().Slice(), c.String("output"))
			if err != nil {
				return err
			}
			for _, m := range r.Machines {
				fmt.Fprintf(os.Stderr, "study merge: shards ran on different machines; absolute latencies are not comparable: %s\n", m)
			}
			return finishStudy(c, r, c.String("output"), 0)
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

func joinPrecisions(ps []convert.Precision) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
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
