package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func init() { register(newSensitivityCommand()) }

func newSensitivityCommand() *cli.Command {
	return &cli.Command{
		Name:      "sensitivity",
		Usage:     "measure how much each Linear/conv layer costs when quantized alone (or left out)",
		ArgsUsage: "SRC -o DIR --precision int8|int4|nf4",
		Description: `For every quantizable layer of the checkpoint SRC (Linear weights, and
MobileViT's convolutions), quantize that layer alone at --precision, the rest
FP32, run the graph in ONNX Runtime on the inputs and compare its outputs
with the FP32 graph's: mean KL divergence of the softmax, cosine of the
logits (mean and min), top-1 agreement, and labelled top-1 when the images
are an ImageFolder whose folders match the model's id2label (as verify reads
them). --leave-one-out also measures every layer quantized except one.

Each variant graph is built in memory from one conversion per precision,
its large weights written once to a temporary data file every variant
shares; variants run in parallel (--workers at once sharing --threads); the
FP32 outputs are computed once, and a variant that changes one layer starts
from the stored FP32 activations before that layer. Inputs: --calib-images (at most --samples of them, spread
evenly), else --samples synthetic inputs (default 64).

DIR (created; must not exist or be empty) receives sensitivity.md, .csv,
.json and a heatmap sensitivity.png (layers × metric, network order).

Example:
   quantpack sensitivity deit-tiny -o sens-int4 --precision int4 --samples 64
   quantpack sensitivity vit-28 -o sens --precision int4 --calib-images calib --leave-one-out

` + exitCodeHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report `DIR` to create", Required: true},
			&cli.StringFlag{Name: "precision", Aliases: []string{"p"}, Usage: "`P`: int8, int4 or nf4", Required: true},
			&cli.BoolFlag{Name: "leave-one-out", Usage: "also quantize every layer except one, for each layer"},
			&cli.IntFlag{Name: "block-size", Usage: "int4 or nf4 block size `N`", DefaultText: blockSizeDefault},
			&cli.BoolFlag{Name: "double-quant", Value: true, Usage: "nf4: bitsandbytes double quant"},
			&cli.StringFlag{Name: "int8-mode", Value: convert.Int8Dynamic, Usage: "int8 graph form `MODE`: dynamic or qdq"},
			&cli.IntFlag{Name: "threads", Usage: "`N` threads the variant sessions share (--workers of them at once, N/workers intra-op threads each); the report does not depend on it", DefaultText: "all cores"},
			&cli.BoolFlag{Name: "json", Usage: "print sensitivity.json on stdout"},
		}, tuneFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("sensitivity takes one SRC, got %d arguments", c.NArg())
			}
			p, err := convert.ParsePrecision(c.String("precision"))
			if err != nil || (p != convert.Int8 && p != convert.Int4 && p != convert.NF4) {
				return usagef("--precision %q: want int8, int4 or nf4", c.String("precision"))
			}
			t, err := tuneOptionsFrom(c, p)
			if err != nil {
				return err
			}
			src, _, err := resolveSource(c, "sensitivity", "SRC", c.Args().First())
			if err != nil {
				return err
			}
			if c.Int("threads") < 0 {
				return usagef("--threads must be ≥ 0")
			}
			opt := tune.SensitivityOptions{Src: src, Precision: p, Images: t.images, Samples: t.samples,
				LeaveOneOut: c.Bool("leave-one-out"), Workers: t.workers, Threads: c.Int("threads"), Open: t.open, Convert: t.convert, Export: t.export,
				Progress: t.progress("sensitivity")}
			r, err := tune.Sensitivity(c.Context, opt)
			if err != nil {
				return err
			}
			out := c.String("output")
			if err := tune.WriteSensitivity(out, r); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(os.Stdout, r)
			}
			fmt.Printf("%s: %d layers at %s over %s in %.1f s; report in %s\n", r.Architecture, len(r.Layers), r.Precision,
				r.Inputs, r.Timing.Total, filepath.Join(out, tune.FileMarkdown))
			return nil
		},
	}
}

// tuneFlags are the flags sensitivity and --precision auto share.
func tuneFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "calib-images", Usage: "ImageFolder `DIR` of calibration images (sensitivity, --precision auto, export --int8-mode static)", DefaultText: "synthetic inputs"},
		&cli.IntFlag{Name: "samples", Usage: "`N` inputs: the synthetic count, or at most this many calibration images", DefaultText: "64 synthetic, or every calibration image"},
		&cli.IntFlag{Name: "workers", Usage: "`N` variant graphs run at once, sharing the cores (cores/N intra-op threads each)", DefaultText: "one per core"},
		&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library `PATH`", DefaultText: "$" + ort.EnvLibraryPath + ", else the copy make ort fetched"},
	}
}

// tuneSettings are the parsed shared flags.
type tuneSettings struct {
	images  string
	samples int
	workers int
	open    tune.Opener
	convert convert.Options
	export  convert.ExportOptions
}

// tuneOptionsFrom parses the shared flags and loads ONNX Runtime (exit 6
// when it cannot). Convert and export flags that exist on the command
// (block size, int8 mode, ...) are honoured.
func tuneOptionsFrom(c *cli.Context, p convert.Precision) (*tuneSettings, error) {
	t := &tuneSettings{images: c.String("calib-images"), samples: c.Int("samples"), workers: c.Int("workers")}
	if t.samples < 0 || t.workers < 0 {
		return nil, usagef("--samples and --workers must be ≥ 0")
	}
	t.convert = convert.Options{BlockSize: c.Int("block-size"), Asymmetric: c.Bool("asymmetric"), RestDType: c.String("rest-dtype"),
		DoubleQuant: switchFlag(c, "double-quant")}
	t.export = convert.ExportOptions{Int8Mode: c.String("int8-mode"), Int4Accuracy: c.Int("int4-accuracy"), ImageSize: c.Int("image-size"),
		Opset: c.Int("opset")}
	lib, err := ort.LibraryPath(c.String("ort-lib"))
	if err != nil {
		return nil, err
	}
	if err := ort.Init(lib); err != nil {
		return nil, err
	}
	t.open = tuneOpener
	return t, nil
}

// tuneOpener opens variant graphs as ONNX Runtime sessions with the
// threads tune shares out (workers × threads within the cores: variants
// run side by side rather than one session spreading over every core) and
// the folder of their shared external data.
func tuneOpener(model []byte, opt tune.SessionOptions) (verify.Runner, error) {
	s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: max(opt.Threads, 1), ExternalDataDir: opt.DataDir})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// progress returns a counter printer for stderr on a terminal, else nil.
func (t *tuneSettings) progress(name string) func(done, total int) {
	if !stderrIsTerminal() {
		return nil
	}
	return func(done, total int) { fmt.Fprintf(os.Stderr, "\r%s: %d/%d variants", name, done, total) }
}
