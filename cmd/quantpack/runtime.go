package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// runtimeFlags are the flags verify and study share: how the models are
// run and timed, and what they are compared on. One declaration, so both
// commands have the same names, defaults and help text.
func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: ort.DeviceCPU, Usage: "`DEVICE`: cpu or cuda"},
		&cli.StringFlag{Name: "ep-library", Usage: "plugin execution provider library `PATH` (with --device cuda)"},
		&cli.StringFlag{Name: "batch", Value: "1", Usage: "comma-separated batch sizes `N,N`; the first is used for agreement and speedup"},
		&cli.IntFlag{Name: "warmup", Value: verify.DefaultWarmup, Usage: "`N` untimed runs per model and batch size"},
		&cli.IntFlag{Name: "iters", Value: verify.DefaultIters, Usage: "`N` timed runs per model and batch size"},
		&cli.IntFlag{Name: "threads", Usage: "`N` ONNX Runtime intra-op threads", DefaultText: "physical cores"},
		&cli.StringFlag{Name: "images", Usage: "ImageFolder `DIR` of images to compare on (DIR/<class>/*.jpg|png)", DefaultText: "synthetic inputs"},
		&cli.StringFlag{Name: "labels", Usage: "`FILE` of class names, one per line in class order", DefaultText: "config.json id2label"},
		&cli.IntFlag{Name: "samples", Value: verify.DefaultSamples, Usage: "number `N` of synthetic inputs without --images"},
		&cli.Uint64Flag{Name: "seed", Value: verify.DefaultSeed, Usage: "`SEED` of the synthetic inputs"},
		&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library `PATH`", DefaultText: "$" + ort.EnvLibraryPath + ", else the copy make ort fetched"},
		&cli.BoolFlag{Name: "no-memory", Usage: "skip the memory measurement (no child processes)"},
	}
}

// runtimeOptions are runtimeFlags parsed and checked. After initORT,
// Runtime is complete (opener, memory probe, threads, runtime version) and
// goes to verify.Compare or study.Run as it is.
type runtimeOptions struct {
	verify.Runtime
	verify.Inputs
	ortLib   string
	noMemory bool
}

// runtimeOptionsFrom reads runtimeFlags and checks the runtime settings
// with verify's own rule (verify.Runtime.Validate): a bad value is a usage
// error (exit 2) naming the flag, before anything is loaded. The inputs
// are checked by checkInputs, after the command has checked its arguments.
func runtimeOptionsFrom(c *cli.Context, cmd string) (runtimeOptions, error) {
	o := runtimeOptions{
		Runtime: verify.Runtime{Device: c.String("device"), EPLibrary: c.String("ep-library"),
			Threads: c.Int("threads"), Warmup: c.Int("warmup"), Iters: c.Int("iters")},
		Inputs: verify.Inputs{Images: c.String("images"), Labels: c.String("labels"),
			Samples: c.Int("samples"), Seed: c.Uint64("seed")},
		ortLib: c.String("ort-lib"), noMemory: c.Bool("no-memory"),
	}
	var err error
	if o.BatchSizes, err = parseBatches(c.String("batch")); err != nil {
		return o, err
	}
	if err := o.Runtime.Validate(); err != nil {
		return o, runtimeUsage(cmd, err)
	}
	return o, nil
}

// runtimeUsage is a usage error (exit 2) from verify's checks, said by
// cmd (verify's own messages already start with "verify:").
func runtimeUsage(cmd string, err error) error {
	if cmd != "verify" {
		err = fmt.Errorf("%s: %w", cmd, err)
	}
	return usageError(err)
}

// checkInputs resolves --images and --labels (exit 3 naming the flag when
// one does not exist), then checks the inputs with verify's rule
// (verify.Inputs.Validate; exit 2).
func (o *runtimeOptions) checkInputs(cmd string) error {
	var err error
	if o.Images != "" {
		if o.Images, err = resolveInput(cmd, "--images", o.Images); err != nil {
			return err
		}
	}
	if o.Labels != "" {
		if o.Labels, err = resolveInput(cmd, "--labels", o.Labels); err != nil {
			return err
		}
	}
	if err := o.Inputs.Validate(); err != nil {
		return runtimeUsage(cmd, err)
	}
	return nil
}

// parseBatches reads --batch "1,8"; the sizes' range is checked by
// verify.Runtime.Validate.
func parseBatches(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, usagef("--batch %q: want comma-separated sizes, e.g. 1,8", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// initORT resolves and loads the ONNX Runtime library (exit 6 when it
// cannot) and completes Runtime: the thread count (physical cores when
// --threads is 0), the runtime's version, the opener and, unless
// --no-memory, the memory probe.
func (o *runtimeOptions) initORT() error {
	lib, err := ort.LibraryPath(o.ortLib)
	if err != nil {
		return err
	}
	if err := ort.Init(lib); err != nil {
		return err
	}
	o.ortLib = lib
	if o.Threads == 0 {
		p := verify.CollectProvenance()
		o.Threads = p.PhysicalCores
		if o.Threads == 0 {
			o.Threads = p.LogicalCPUs
		}
	}
	o.ORTVersion = ort.Version()
	o.Open = o.opener()
	if !o.noMemory {
		o.Memory = o.memoryProbe()
	}
	return nil
}

// opener opens ONNX Runtime sessions with the run's device and threads.
// The sessions report what they applied (ort.Session.Applied), which is
// what the reports record.
func (o *runtimeOptions) opener() verify.Opener {
	opt := ort.Options{IntraOpThreads: o.Threads, Device: o.Device, EPLibrary: o.EPLibrary}
	return func(path string) (verify.Runner, error) {
		s, err := ort.Open(path, opt)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// memoryProbe re-executes this binary as `quantpack verify --child-measure`
// (the protocol is verify's: verify.ChildCommand).
func (o *runtimeOptions) memoryProbe() verify.MemoryProbe {
	return func(ctx context.Context, model string, batch int) (verify.ChildMemory, error) {
		exe, env, err := childExe()
		if err != nil {
			return verify.ChildMemory{}, err
		}
		c := verify.ChildCommand{Exe: exe, Env: env, ORTLib: o.ortLib, Device: o.Device, EPLibrary: o.EPLibrary,
			Threads: o.Threads, Seed: o.Seed, ExitErr: childExitErr}
		return c.Probe(o.Device == ort.DeviceCUDA)(ctx, model, batch)
	}
}
