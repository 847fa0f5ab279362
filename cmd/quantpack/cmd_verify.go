package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func init() { register(newVerifyCommand()) }

// verifyOptions are verify's flags.
type verifyOptions struct {
	baseline, candidate string
	device, epLibrary   string
	ortLib              string
	batches             []int
	warmup, iters       int
	threads             int
	images, labels      string
	samples             int
	seed                uint64
	noMemory            bool
	json                bool
	gates               verify.Gates
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

--device cuda uses the CUDA provider of a GPU build of ONNX Runtime, or with
--ep-library PATH a plugin execution provider library; without CUDA the run
stops with exit 6.

Example:
   quantpack verify onnx-fp32 onnx-int8 --batch 1,8 --min-cosine 0.99
   quantpack verify onnx-fp32 onnx-int8 --images val/ --max-top1-drop 1 --json | jq .gates

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "device", Value: ort.DeviceCPU, Usage: "cpu or cuda"},
			&cli.StringFlag{Name: "ep-library", Usage: "plugin execution provider library (with --device cuda)"},
			&cli.StringFlag{Name: "batch", Value: "1", Usage: "comma-separated batch sizes; the first is used for agreement and speedup"},
			&cli.IntFlag{Name: "warmup", Value: verify.DefaultWarmup, Usage: "untimed runs per model and batch size"},
			&cli.IntFlag{Name: "iters", Value: verify.DefaultIters, Usage: "timed runs per model and batch size"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (default: physical cores)"},
			&cli.StringFlag{Name: "images", Usage: "ImageFolder of images to compare on (default: synthetic inputs)"},
			&cli.StringFlag{Name: "labels", Usage: "class names, one per line in class order (default: config.json id2label)"},
			&cli.IntFlag{Name: "samples", Value: verify.DefaultSamples, Usage: "number of synthetic inputs without --images"},
			&cli.Uint64Flag{Name: "seed", Value: verify.DefaultSeed, Usage: "seed of the synthetic inputs"},
			&cli.Float64Flag{Name: "max-top1-drop", Usage: "gate: maximum top-1 drop in percentage points"},
			&cli.Float64Flag{Name: "min-cosine", Usage: "gate: minimum cosine similarity of outputs"},
			&cli.Float64Flag{Name: "max-latency-ms", Usage: "gate: maximum candidate p50 latency in ms"},
			&cli.Float64Flag{Name: "min-speedup", Usage: "gate: minimum speedup over the baseline"},
			&cli.Float64Flag{Name: "max-size-ratio", Usage: "gate: maximum candidate/baseline size"},
			&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library (default: $" + ort.EnvLibraryPath + ", then `make ort`'s copy)"},
			&cli.BoolFlag{Name: "no-memory", Usage: "skip the memory measurement (no child processes)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object on stdout"},
			&cli.StringFlag{Name: "child-measure", Hidden: true},
			&cli.BoolFlag{Name: "child-runtime", Hidden: true},
			&cli.IntFlag{Name: "child-batch", Hidden: true, Value: 1},
		},
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
	o := verifyOptions{
		device: c.String("device"), epLibrary: c.String("ep-library"), ortLib: c.String("ort-lib"),
		warmup: c.Int("warmup"), iters: c.Int("iters"), threads: c.Int("threads"),
		images: c.String("images"), labels: c.String("labels"), samples: c.Int("samples"), seed: c.Uint64("seed"),
		noMemory: c.Bool("no-memory"), json: c.Bool("json"),
		childModel: c.String("child-measure"), childRuntime: c.Bool("child-runtime"), childBatch: c.Int("child-batch"),
	}
	if o.device != ort.DeviceCPU && o.device != ort.DeviceCUDA {
		return o, usagef("--device %q: want cpu or cuda", o.device)
	}
	if o.epLibrary != "" && o.device != ort.DeviceCUDA {
		return o, usagef("--ep-library needs --device cuda")
	}
	if o.threads < 0 || o.warmup < 0 || o.iters < 1 || o.samples < 1 {
		return o, usagef("--threads, --warmup must be ≥ 0 and --iters, --samples ≥ 1")
	}
	var err error
	if o.batches, err = parseBatches(c.String("batch")); err != nil {
		return o, err
	}
	gate := func(name string) *float64 {
		if !c.IsSet(name) {
			return nil
		}
		v := c.Float64(name)
		return &v
	}
	o.gates = verify.Gates{MaxTop1Drop: gate("max-top1-drop"), MinCosine: gate("min-cosine"),
		MaxLatencyMs: gate("max-latency-ms"), MinSpeedup: gate("min-speedup"), MaxSizeRatio: gate("max-size-ratio")}
	if o.childModel != "" || o.childRuntime {
		return o, nil
	}
	if c.NArg() != 2 {
		return o, usagef("verify takes BASELINE and CANDIDATE, got %d arguments", c.NArg())
	}
	o.baseline, o.candidate = c.Args().Get(0), c.Args().Get(1)
	return o, nil
}

// parseBatches reads --batch "1,8".
func parseBatches(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1<<16 {
			return nil, usagef("--batch %q: want comma-separated sizes from 1 to 65536", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// initORT resolves and loads the ONNX Runtime library (exit 6 when it
// cannot) and returns the thread count to use.
func (o *verifyOptions) initORT() error {
	lib, err := ort.LibraryPath(o.ortLib)
	if err != nil {
		return err
	}
	if err := ort.Init(lib); err != nil {
		return err
	}
	o.ortLib = lib
	if o.threads == 0 {
		p := verify.CollectProvenance()
		o.threads = p.PhysicalCores
		if o.threads == 0 {
			o.threads = p.LogicalCPUs
		}
	}
	return nil
}

// opener opens ONNX Runtime sessions with the run's device and threads.
func (o *verifyOptions) opener() verify.Opener {
	opt := ort.Options{IntraOpThreads: o.threads, Device: o.device, EPLibrary: o.epLibrary}
	return func(path string) (verify.Runner, error) {
		s, err := ort.Open(path, opt)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func runVerify(ctx context.Context, o verifyOptions, stdout io.Writer) error {
	if err := o.initORT(); err != nil {
		return err
	}
	vo := verify.Options{
		Baseline: o.baseline, Candidate: o.candidate, Open: o.opener(),
		Device: o.device, EPLibrary: o.epLibrary, ORTVersion: ort.Version(), Threads: o.threads,
		BatchSizes: o.batches, Warmup: o.warmup, Iters: o.iters,
		Images: o.images, Labels: o.labels, Samples: o.samples, Seed: o.seed, Gates: o.gates,
	}
	if !o.noMemory {
		vo.Memory = o.memoryProbe()
	}
	rep, err := verify.Compare(ctx, vo)
	var gateErr *verify.GateError
	if err != nil && !errors.As(err, &gateErr) {
		return err
	}
	if o.json {
		if perr := printJSON(stdout, rep); perr != nil {
			return perr
		}
	} else if perr := rep.Markdown(stdout); perr != nil {
		return perr
	}
	if gateErr != nil {
		reportWorstLayers(ctx, os.Stderr, o.candidate)
	}
	return err
}

// childExe returns the program a memory child runs and extra environment
// for it; tests replace it to re-execute the test binary as quantpack.
var childExe = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, nil, err
}

// ErrMemoryChild is a memory child that failed.
var ErrMemoryChild = fault.New(fault.Other, "verify: memory measurement child failed")

// memoryProbe re-executes this binary as `quantpack verify --child-measure`.
func (o *verifyOptions) memoryProbe() verify.MemoryProbe {
	return func(ctx context.Context, model string, batch int) (verify.ChildMemory, error) {
		exe, env, err := childExe()
		if err != nil {
			return verify.ChildMemory{}, err
		}
		args := []string{"verify", "--ort-lib", o.ortLib, "--device", o.device, "--threads", strconv.Itoa(o.threads),
			"--seed", strconv.FormatUint(o.seed, 10)}
		if o.epLibrary != "" {
			args = append(args, "--ep-library", o.epLibrary)
		}
		if model == "" {
			args = append(args, "--child-runtime")
		} else {
			args = append(args, "--child-measure", model, "--child-batch", strconv.Itoa(batch))
		}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &limitedBuffer{buf: &stdout, max: maxChildStdout}, &stderr
		m, err := verify.MeasureChild(cmd)
		if err != nil {
			kind := ErrMemoryChild
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == ExitRuntime {
				kind = ort.ErrUnavailable // the child could not load the runtime or device
			}
			return m, fmt.Errorf("%w: %v: %s", kind, err, strings.TrimSpace(stderr.String()))
		}
		if model != "" && o.device == ort.DeviceCUDA {
			// GPU memory travels only in the child's report on stdout; a
			// report that cannot be read costs the GPU figure, not the run.
			if rep, perr := parseChildReport(stdout.Bytes()); perr != nil {
				m.GPUNote = fmt.Sprintf("the memory child's report could not be read: %v", perr)
			} else {
				m.GPUBytes, m.GPUDevice, m.GPUNote = rep.GPUBytes, rep.GPUDevice, rep.GPUNote
			}
		}
		return m, nil
	}
}

// maxChildStdout bounds what a memory child's stdout may hold: its report
// is a few hundred bytes, anything far beyond is not ours.
const maxChildStdout = 1 << 20

// limitedBuffer keeps the first max bytes written to it and drops the rest
// (without failing the writer, so the child never blocks on its stdout).
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// parseChildReport reads the childReport a memory child printed: the last
// JSON object that starts at the beginning of a line (printJSON indents its
// members), so that a line a library printed before it does no harm.
func parseChildReport(out []byte) (childReport, error) {
	out = bytes.TrimSpace(out)
	start := bytes.LastIndex(out, []byte("\n{"))
	if start >= 0 {
		start++
	} else if bytes.HasPrefix(out, []byte("{")) {
		start = 0
	} else {
		return childReport{}, errors.New("no JSON object on stdout")
	}
	var r childReport
	dec := json.NewDecoder(bytes.NewReader(out[start:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return childReport{}, err
	}
	return r, nil
}

// childReport is what a memory child prints on stdout. GPUBytes is null
// unless the device is cuda and NVML answered; GPUNote then says why.
type childReport struct {
	Model        string `json:"model,omitempty"`
	Batch        int    `json:"batch,omitempty"`
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	RSSBytes     int64  `json:"rss_bytes"`
	GPUBytes     *int64 `json:"gpu_bytes"`
	GPUDevice    string `json:"gpu_device,omitempty"`
	GPUNote      string `json:"gpu_note,omitempty"`
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
	if o.device == ort.DeviceCUDA {
		gpu = ownGPUMemory
	}
	m, err := verify.MeasureInChild(ctx, o.opener(), model, o.childBatch, o.seed, gpu)
	if err != nil {
		return err
	}
	if err := verify.ReportPeakRSS(); err != nil {
		return err
	}
	return printJSON(stdout, childReport{Model: model, Batch: o.childBatch, PeakRSSBytes: m.RSS.Peak, RSSBytes: m.RSS.Current,
		GPUBytes: m.GPUBytes, GPUDevice: m.GPUDevice, GPUNote: m.GPUNote})
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
