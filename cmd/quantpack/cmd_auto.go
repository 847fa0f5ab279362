package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/human"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// autoHelp is appended to convert's and export's help.
const autoHelp = `--precision auto picks a precision per layer (from --candidates, smallest
first) so that the result meets --max-top1-drop PCT (labelled top-1 drop in
points on --calib-images; without labels, top-1 disagreement with FP32) and/or
--min-cosine X (mean logit cosine with FP32), within --max-size-ratio R of the
FP32 weights. Layers are ranked by quantizing each alone and promoted one step
at a time, most sensitive first; the final mix is written as a normal artifact,
run again from disk to confirm, and recorded in quantpack.json ("auto"). The
best state found is always written: a --budget that runs out, Ctrl-C (exit
130) or an unreachable target (exit 5) still leave a valid artifact.

   quantpack export vit-28 -o v28-auto --precision auto --max-top1-drop 0.5 --calib-images calib
   quantpack convert vit-28 -o v28-mix --precision auto --min-cosine 0.9995 --calib-images calib

`

// autoFlags are --precision auto's flags; export already has --ort-lib.
func autoFlags(withORTLib bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.Float64Flag{Name: "max-top1-drop", Usage: "auto: largest top-1 drop `PP` in points on the calibration images", DefaultText: "none"},
		&cli.Float64Flag{Name: "min-cosine", Usage: "auto: smallest mean logit cosine `C` with FP32 (export --int8-mode static: quantize --min-cosine's output target)", DefaultText: "none"},
		&cli.Float64Flag{Name: "max-size-ratio", Usage: "auto: largest weight size `RATIO` relative to FP32", DefaultText: "no cap"},
		&cli.StringFlag{Name: "candidates", Value: "int4,int8,fp16", Usage: "auto: `PRECISIONS` a layer may take"},
		&cli.DurationFlag{Name: "budget", Usage: "auto: time limit `D` of the search (e.g. 10m; the best state is written when it ends)", DefaultText: "none"},
	}
	for _, f := range tuneFlags() {
		if !withORTLib && f.Names()[0] == "ort-lib" {
			continue
		}
		fs = append(fs, f)
	}
	return fs
}

// runAuto is convert/export --precision auto.
func runAuto(c *cli.Context, export bool) error {
	if c.NArg() != 1 {
		return usagef("--precision auto takes one SRC, got %d arguments", c.NArg())
	}
	var target tune.Target
	if c.IsSet("max-top1-drop") {
		v := c.Float64("max-top1-drop")
		if v < 0 || v > 100 {
			return usagef("--max-top1-drop %g: want 0 to 100 (points)", v)
		}
		target.MaxTop1Drop = &v
	}
	if c.IsSet("min-cosine") {
		v := c.Float64("min-cosine")
		if v < -1 || v > 1 {
			return usagef("--min-cosine %g: want -1 to 1", v)
		}
		target.MinCosine = &v
	}
	if target.MaxTop1Drop == nil && target.MinCosine == nil {
		return usagef("--precision auto needs --max-top1-drop PCT or --min-cosine X")
	}
	target.MaxSizeRatio = c.Float64("max-size-ratio")
	if target.MaxSizeRatio < 0 || c.Duration("budget") < 0 {
		return usagef("--max-size-ratio and --budget must be ≥ 0")
	}
	cands, err := tune.ParseCandidates(c.String("candidates"))
	if err != nil {
		return usagef("%v", err)
	}
	t, err := tuneOptionsFrom(c, "")
	if err != nil {
		return err
	}
	t.convert.Keep = c.StringSlice("keep")
	t.convert.Threads = c.Int("threads")
	src, _, err := resolveSource(c, c.Command.Name, "SRC", c.Args().First())
	if err != nil {
		return err
	}
	opt := tune.AutoOptions{Src: src, Out: outputPath(c), Export: export, Candidates: cands, Target: target,
		Budget: c.Duration("budget"), Images: t.images, Samples: t.samples, Workers: t.workers, Open: t.open,
		OpenPath: func(path string) (verify.Runner, error) {
			s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		ConvertOptions: t.convert, ExportOptions: t.export, Log: os.Stderr}
	if opt.Images == "" {
		fmt.Fprintln(os.Stderr, "auto: no --calib-images: searching on synthetic inputs (top-1 drop is measured as disagreement with FP32)")
	}
	res, err := tune.Auto(c.Context, opt)
	if res != nil {
		if c.Bool("json") {
			if perr := printJSON(os.Stdout, res); perr != nil && err == nil {
				err = perr
			}
		} else {
			printAuto(os.Stdout, res)
		}
	}
	if err != nil && errors.Is(err, tune.ErrTargetUnreachable) && res == nil {
		return err
	}
	return err
}

func printAuto(w io.Writer, r *tune.AutoResult) {
	rec := r.Record
	var mix []string
	keys := make([]string, 0, len(rec.Mix))
	for k := range rec.Mix {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mix = append(mix, fmt.Sprintf("%s×%d", k, rec.Mix[k]))
	}
	status := "reached"
	if !rec.Reached {
		status = "NOT reached"
	}
	fmt.Fprintf(w, "auto: target %s %s (%s) after %d evaluations in %.1f s\n", rec.Target, status, rec.Stop, rec.Evaluations, rec.Seconds)
	fmt.Fprintf(w, "  layers     %s\n", strings.Join(mix, " "))
	m := rec.Measured
	if rec.Confirmed != nil {
		m = *rec.Confirmed
	}
	fmt.Fprintf(w, "  measured   top-1 agreement %.2f%%, cosine mean %.6f (min %.6f), KL %.3g", 100*m.Top1Agreement, m.CosineMean, m.CosineMin, m.KLMean)
	if m.Top1Drop != nil {
		fmt.Fprintf(w, ", top-1 %.2f%% → %.2f%% (drop %.2f pt)", 100**m.BaselineTop1, 100**m.Top1, *m.Top1Drop)
	}
	fmt.Fprintf(w, "\n  calibration %s\n", rec.Calibration)
	fmt.Fprintf(w, "  written    %s (%s, weights %.3f of FP32)\n", r.Out, human.Bytes(r.SizeBytes), m.SizeRatio)
}

// printAutoRecord prints the mix of a --precision auto artifact (nothing
// for others).
func printAutoRecord(w io.Writer, a *convert.AutoRecord) {
	if a == nil {
		return
	}
	keys := make([]string, 0, len(a.Mix))
	for k := range a.Mix {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var mix []string
	for _, k := range keys {
		mix = append(mix, fmt.Sprintf("%s×%d", k, a.Mix[k]))
	}
	reached := "reached"
	if !a.Reached {
		reached = "not reached"
	}
	fmt.Fprintf(w, "auto: %s (target %s %s, %s); calibration %s\n", strings.Join(mix, " "), a.Target, reached, a.Stop, a.Calibration)
	m := a.Measured
	if a.Confirmed != nil {
		m = *a.Confirmed
	}
	fmt.Fprintf(w, "auto: measured top-1 agreement %.2f%%, cosine mean %.6f", 100*m.Top1Agreement, m.CosineMean)
	if m.Top1Drop != nil {
		fmt.Fprintf(w, ", top-1 drop %.2f pt", *m.Top1Drop)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tprecision\tscheme")
	for _, l := range a.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.Precision, l.Scheme)
	}
	tw.Flush()
}

// printExportInspection describes an export directory.
func printExportInspection(w io.Writer, in *convert.ExportInspection) {
	fmt.Fprintf(w, "%s: ONNX export (%s), %s, precision %s, %s\n", in.Path, in.Format, in.Architecture, in.Precision, human.Bytes(in.Sizes.TotalBytes))
	var ops []string
	for _, k := range slices.Sorted(maps.Keys(in.Ops)) {
		ops = append(ops, fmt.Sprintf("%s×%d", k, in.Ops[k]))
	}
	fmt.Fprintf(w, "ops: %s\n", strings.Join(ops, " "))
	printAutoRecord(w, in.Auto)
}

// autoOnly are the flags convert and export declare for --precision auto
// (autoFlags, tuneFlags) and the calibration flags other modes share.
var autoOnly = []string{"max-top1-drop", "min-cosine", "max-size-ratio", "candidates", "budget", "samples", "workers",
	"calib-images", "calib-samples"}

// checkUnusedAutoFlags refuses (exit 2) a flag of autoOnly that the
// command's mode would ignore: without --precision auto, only calibration
// for --method awq and export's --int8-mode static (which also takes
// --min-cosine, quantize's accuracy target) are read. A flag that is
// silently dropped would let a user believe a target was met.
func checkUnusedAutoFlags(c *cli.Context, static bool) error {
	used := map[string]bool{}
	if c.String("method") == string(quant.MethodAWQ) || static {
		used["calib-images"], used["calib-samples"] = true, true
	}
	if static {
		used["min-cosine"] = true
	}
	for _, f := range autoOnly {
		if c.IsSet(f) && !used[f] {
			what := "--precision auto"
			switch {
			case strings.HasPrefix(f, "calib-"):
				what = "--precision auto, --method awq or export's --int8-mode static"
			case f == "min-cosine":
				what = "--precision auto or export's --int8-mode static"
			}
			return usagef("--%s is read only with %s; without it the flag would be ignored", f, what)
		}
	}
	return nil
}
