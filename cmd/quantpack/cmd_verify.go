package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func init() { register(newVerifyCommand()) }

// verifyOptions are verify's flags.
type verifyOptions struct {
	runtimeOptions
	baseline, candidate string
	json                bool
	layers              bool // --layers: the per-layer comparison even when every gate passes
	gates               verify.Gates
	// CI: --baseline-report and its gates, --junit.
	previous   string
	regression verify.RegressionGates
	junit      string
	// childModel/childRuntime/childBatch: the hidden memory-child mode.
	childModel   string
	childRuntime bool
	childBatch   int
}

func newVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "compare a candidate export with its baseline: latency, throughput, memory, agreement, accuracy, gates",
		ArgsUsage: "BASELINE CANDIDATE",
		Description: `BASELINE and CANDIDATE are export directories (quantpack export) or .onnx
files. Both models get the same inputs: the images of --images DIR (ImageFolder
layout DIR/<class>/*.jpg|png; folders matched to config.json's id2label or to
--labels FILE), preprocessed as the baseline's preprocessor_config.json says,
or deterministic synthetic pictures when no images are given (the report says
so). Images that fail to decode are skipped and listed, never fatal.

Timed runs use the same synthetic batch for both models, alternating between
them; only the ONNX Runtime call is timed. Memory is the peak RSS of a child
process that loads one model and runs it, minus that of a child that only
initialises ONNX Runtime (reported separately). With --device cuda each model
child also reads its own GPU memory through NVML (libnvidia-ml.so.1) right
after its runs; without NVML the GPU figures are null and the report says why.
The full JSON schema of --json is in docs/verify.md.

Gates fail the run with exit 5 and list what failed: --max-top1-drop
(percentage points of labelled top-1 accuracy; without labels, of top-1
disagreement), --min-cosine (minimum over samples), --max-latency-ms
(candidate p50, every batch size), --min-speedup (baseline p50 / candidate p50
at the first batch size), --max-size-ratio (candidate bytes / baseline bytes).
When a gate fails (or with --layers) the report also names the layers that
differ most: both models run on 4 of the inputs with every layer's input and
output exposed, and layers are ranked by the relative error each introduces
(its output's error minus its input's), with the weight SQNR beside it
("layers" in --json).

--device cuda uses the CUDA provider of a GPU build of ONNX Runtime, or with
--ep-library PATH a plugin execution provider library; without CUDA the run
stops with exit 6.

--gate-on-bound judges --max-top1-drop on the pessimistic end of the 95%
Wilson interval of the agreement (or of the candidate's labelled accuracy),
so that a run on few samples cannot pass by luck. The report always gives
those intervals, per-sample KL divergence percentiles (median, p99, p99.9,
max) and each p50's spread across the alternating timing blocks.

Against a previous release: --baseline-report PREV.json (this command's
--json output from then) sets both runs side by side and gates on
--max-latency-regression PCT (candidate p50, every common batch size),
--max-size-regression PCT (candidate bytes) and --max-agreement-regression
PP (labelled accuracy, else top-1 agreement, else 100 × mean cosine). A
previous report from another machine, ONNX Runtime, device or thread count
is refused for the latency gate (exit 2) unless --allow-other-machine.
--junit FILE writes one JUnit test case per gate; on GitHub Actions the
Markdown report is also appended to $GITHUB_STEP_SUMMARY. docs/ci.md has
working CI files.

Example:
   quantpack verify onnx-fp32 onnx-int8 --batch 1,8 --min-cosine 0.99
   quantpack verify onnx-fp32 onnx-int8 --images val/ --max-top1-drop 1 --json | jq .gates
   quantpack verify onnx-fp32 onnx-int8 --json > prev.json     # at release
   quantpack verify onnx-fp32 onnx-int8 --baseline-report prev.json \
       --max-latency-regression 10 --max-size-regression 1 --junit gates.xml

` + exitCodeHelp,
		Flags: append(runtimeFlags(), []cli.Flag{
			&cli.Float64Flag{Name: "max-top1-drop", Usage: "gate: maximum top-1 drop `PP` in percentage points", DefaultText: "no gate"},
			&cli.Float64Flag{Name: "min-cosine", Usage: "gate: minimum cosine similarity `C` of outputs", DefaultText: "no gate"},
			&cli.Float64Flag{Name: "max-latency-ms", Usage: "gate: maximum candidate p50 latency `MS`", DefaultText: "no gate"},
			&cli.Float64Flag{Name: "min-speedup", Usage: "gate: minimum speedup `X` over the baseline", DefaultText: "no gate"},
			&cli.Float64Flag{Name: "max-size-ratio", Usage: "gate: maximum candidate/baseline size `RATIO`", DefaultText: "no gate"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object on stdout"},
			&cli.BoolFlag{Name: "layers", Usage: "rank the candidate's layers by the error each introduces (always done when a gate fails)"},
			&cli.BoolFlag{Name: "gate-on-bound", Usage: "judge --max-top1-drop on the 95% interval's pessimistic bound"},
			&cli.StringFlag{Name: "baseline-report", Usage: "a previous run's --json report `FILE` to compare with and gate against"},
			&cli.Float64Flag{Name: "max-latency-regression", Usage: "gate: max `PCT` the candidate p50 may be slower than in --baseline-report", DefaultText: "no gate"},
			&cli.Float64Flag{Name: "max-size-regression", Usage: "gate: max `PCT` the candidate may be larger than in --baseline-report", DefaultText: "no gate"},
			&cli.Float64Flag{Name: "max-agreement-regression", Usage: "gate: max percentage points `PP` of accuracy/agreement lost since --baseline-report", DefaultText: "no gate"},
			&cli.BoolFlag{Name: "allow-other-machine", Usage: "judge latency against a --baseline-report from another machine or runtime"},
			junitFlag(),
			&cli.StringFlag{Name: "child-measure", Hidden: true},
			&cli.BoolFlag{Name: "child-runtime", Hidden: true},
			&cli.IntFlag{Name: "child-batch", Hidden: true, Value: 1},
		}...),
		Action: func(c *cli.Context) error {
			o, err := verifyOptionsFrom(c)
			if err != nil {
				return err
			}
			if o.childModel != "" || o.childRuntime {
				return runVerifyChild(c.Context, o, os.Stdout)
			}
			return runVerify(c.Context, o, os.Stdout)
		},
	}
}

func verifyOptionsFrom(c *cli.Context) (verifyOptions, error) {
	rt, err := runtimeOptionsFrom(c, "verify")
	if err != nil {
		return verifyOptions{}, err
	}
	o := verifyOptions{runtimeOptions: rt, json: c.Bool("json"), layers: c.Bool("layers"),
		childModel: c.String("child-measure"), childRuntime: c.Bool("child-runtime"), childBatch: c.Int("child-batch"),
	}
	o.gates = verify.Gates{MaxTop1Drop: optFloat(c, "max-top1-drop"), MinCosine: optFloat(c, "min-cosine"),
		MaxLatencyMs: optFloat(c, "max-latency-ms"), MinSpeedup: optFloat(c, "min-speedup"), MaxSizeRatio: optFloat(c, "max-size-ratio"),
		OnBound: c.Bool("gate-on-bound")}
	if err := o.gates.Validate(); err != nil {
		return o, usagef("%v", err)
	}
	if err := o.ciOptionsFrom(c); err != nil {
		return o, err
	}
	if o.childModel != "" || o.childRuntime {
		return o, nil
	}
	if c.NArg() != 2 {
		return o, usagef("verify takes BASELINE and CANDIDATE, got %d arguments", c.NArg())
	}
	if o.baseline, err = resolveInput("verify", "BASELINE", c.Args().Get(0)); err != nil {
		return o, err
	}
	if o.candidate, err = resolveInput("verify", "CANDIDATE", c.Args().Get(1)); err != nil {
		return o, err
	}
	if err := o.checkInputs("verify"); err != nil {
		return o, err
	}
	return o, nil
}

func runVerify(ctx context.Context, o verifyOptions, stdout io.Writer) error {
	if err := o.initORT(); err != nil {
		return err
	}
	vo := verify.Options{Baseline: o.baseline, Candidate: o.candidate, Runtime: o.Runtime, Inputs: o.Inputs, Gates: o.gates}
	if err := o.loadPrevious(&vo); err != nil {
		return err
	}
	start := time.Now()
	rep, err := verify.Compare(ctx, vo)
	var gateErr *verify.GateError
	if err != nil && !errors.As(err, &gateErr) {
		return failJUnit(o.junit, "quantpack verify "+o.candidate, "quantpack.verify", err, time.Since(start).Seconds())
	}
	if gateErr != nil || o.layers {
		diffLayers(ctx, o, rep)
	}
	if jerr := writeJUnit(o.junit, []verify.JUnitSuite{rep.JUnitSuite(time.Since(start).Seconds())}); jerr != nil {
		return jerr
	}
	var md bytes.Buffer
	if perr := rep.Markdown(&md); perr != nil {
		return perr
	}
	if serr := appendStepSummary(md.Bytes()); serr != nil {
		return serr
	}
	if o.json {
		if perr := printJSON(stdout, rep); perr != nil {
			return perr
		}
	} else if _, perr := stdout.Write(md.Bytes()); perr != nil {
		return perr
	}
	return err
}

// diffLayers adds the per-layer comparison to rep (tune.DiffLayers on a
// few of the run's inputs). It is a diagnosis: when it cannot be made, the
// report says why and the run's result stands.
func diffLayers(ctx context.Context, o verifyOptions, rep *verify.Report) {
	open := func(model []byte, dir string) (verify.Runner, error) {
		s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: o.Threads, ExternalDataDir: dir})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	ls, d, err := tune.DiffLayers(ctx, tune.DiffOptions{Baseline: o.baseline, Candidate: o.candidate, Images: o.Images,
		Seed: o.Seed, Open: open})
	if err != nil {
		d = &verify.LayerDiff{Error: err.Error()}
	}
	rep.Layers, rep.LayerDiff = ls, d
}

// ciOptionsFrom reads --baseline-report, its gates and --junit.
func (o *verifyOptions) ciOptionsFrom(c *cli.Context) error {
	o.previous, o.junit = c.String("baseline-report"), c.String("junit")
	o.regression.AllowOtherMachine = c.Bool("allow-other-machine")
	var err error
	for _, f := range []struct {
		name string
		dst  **float64
	}{{"max-latency-regression", &o.regression.MaxLatencyPct}, {"max-size-regression", &o.regression.MaxSizePct},
		{"max-agreement-regression", &o.regression.MaxAgreementPct}} {
		if *f.dst, err = percentFlag(c, f.name); err != nil {
			return err
		}
	}
	if o.previous == "" && (o.regression.MaxLatencyPct != nil || o.regression.MaxSizePct != nil || o.regression.MaxAgreementPct != nil) {
		return usagef("--max-latency-regression, --max-size-regression and --max-agreement-regression need --baseline-report PREV.json")
	}
	return nil
}

// loadPrevious reads --baseline-report into vo.
func (o *verifyOptions) loadPrevious(vo *verify.Options) error {
	if o.previous == "" {
		return nil
	}
	prev, err := verify.LoadReport(o.previous)
	if err != nil {
		return err
	}
	vo.Previous, vo.PreviousPath, vo.Regression = prev, o.previous, o.regression
	return nil
}

// childExe returns the program a memory child runs and extra environment
// for it; tests replace it to re-execute the test binary as quantpack.
var childExe = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, nil, err
}

// childExitErr: a child that exits ExitRuntime could not load the runtime
// or the device.
func childExitErr(code int) error {
	if code == ExitRuntime {
		return ort.ErrUnavailable
	}
	return nil
}

// runVerifyChild is the hidden child mode: load ONNX Runtime (and the
// model, unless --child-runtime), run it, read its GPU memory through NVML
// on --device cuda, and report the peak RSS in the file the parent named
// and everything as JSON on stdout.
func runVerifyChild(ctx context.Context, o verifyOptions, stdout io.Writer) error {
	if err := o.initORT(); err != nil {
		return err
	}
	model := o.childModel
	if o.childRuntime {
		model = ""
	}
	var gpu verify.GPUQuery
	if o.Device == ort.DeviceCUDA {
		gpu = ownGPUMemory
	}
	m, err := verify.MeasureInChild(ctx, o.Open, model, o.childBatch, o.Seed, gpu)
	if err != nil {
		return err
	}
	if err := verify.ReportPeakRSS(); err != nil {
		return err
	}
	return verify.NewChildReport(model, o.childBatch, m).Write(stdout)
}

// ownGPUMemory is the GPUQuery of a memory child: its own process's GPU
// memory, from NVML.
func ownGPUMemory() (int64, string, error) {
	used, dev, err := ort.GPUMemoryOfProcess(os.Getpid())
	if err != nil {
		return 0, "", err
	}
	if used > math.MaxInt64 {
		return 0, "", fmt.Errorf("%w: NVML reports %d bytes", ort.ErrNVMLUnavailable, used)
	}
	return int64(used), dev, nil
}
