package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/human"
	"github.com/quantpack/quantpack/quantize"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func init() { register(newQuantizeCommand()) }

func newQuantizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "quantize",
		Usage:     "static INT8 (W8A8 QDQ) of any float32 ONNX model, calibrated in ONNX Runtime",
		ArgsUsage: "SRC -o OUT [--calib-images DIR | --calib-data FILE.npy | --calib-samples N]",
		Description: `SRC is a model.onnx from any exporter (external data included) or an export
directory holding one. OUT gets model.onnx (+ model.onnx.data), quantpack.json
(method, calibration source with sha256 and count, every scale and zero point,
every node left float and why) and, when SRC is a directory, its config.json
and preprocessor_config.json. OUT appears only when complete.

What is quantized: MatMul and Gemm with a constant float32 weight, and Conv:
the weight as int8 per output channel (symmetric), the activation input per
tensor with a range fixed by calibration (--activation-type, asymmetric uint8
by default: the form ONNX Runtime's CPU provider runs as MatMulIntegerToFloat
/ QLinearConv). LayerNormalization, Softmax, GELU/Erf and the attention core
stay float; --exclude GLOB (node or tensor names, repeatable) narrows,
--include-ops OP,OP widens (their float inputs get QDQ too).

Calibration runs the FP32 model in ONNX Runtime over the inputs, batch by
batch, keeping per tensor only min/max and a 4096-bin histogram:
   --calib-images DIR    ImageFolder or flat folder, preprocessed as verify
                         does (preprocessor_config.json beside the model, or
                         --preprocessor FILE); undecodable images are skipped
                         and counted
   --calib-data FILE.npy float32 [N, ...] for a single-input model, or
                         NAME=FILE.npy once per input
   neither               --calib-samples synthetic inputs (the manifest says so)
--calib-samples N (default 128) takes the first N samples (class folders are
interleaved). --method percentile (default; --percentile, default 99.999, of
each tail) | entropy (KL-divergence threshold, as TensorRT; symmetric, it can
clip bimodal inputs such as mostly-black images hard) | minmax. The output is the same
bytes at any --threads.

NaN/Inf in an activation leaves the nodes that read it float (listed).

--min-cosine X makes the pass accuracy-aware: it measures the quantized
graph's output cosine with FP32 on --holdout N (default 16) held-out samples,
the ones after the calibration samples in the same inputs (disjoint). When the
mean misses X, every quantized node is ranked by the cosine with it alone
quantized, and the worst are left float one by one until X holds; each is
recorded with its rank and cosine in quantpack.json ("float", "accuracy").
No graph reaching X: exit 5. A source opset 11/12 is raised to 13 when no
node's meaning changes (per-channel weights need DequantizeLinear-13).

--report DIR writes calibration.md, calibration.json and calibration.png: per
calibrated tensor min/max/percentiles, the chosen range, the fraction clipped,
and FP16 risk (any |x| > 65504; or ≥ 0.1% of the values below FP16's
subnormal range, which round to 0): the same pass answers "is FP16 safe".

Example:
   quantpack quantize det.onnx -o det-int8 --calib-images pages/ --preprocessor pre.json --min-cosine 0.99
   quantpack export vit-base -o vit-fp32 --precision fp32
   quantpack quantize vit-fp32 -o vit-int8s --calib-images calib/ --calib-samples 128
   quantpack verify vit-fp32 vit-int8s --images test/ --batch 1,8
   quantpack quantize model.onnx -o q --calib-data x.npy --method percentile --json

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "`DIR` to create (absent or empty)", Required: true},
			&cli.StringFlag{Name: "calib-images", Usage: "calibration images `DIR` (ImageFolder or flat folder)"},
			&cli.StringSliceFlag{Name: "calib-data", Usage: "calibration data: a .npy `FILE`, or NAME=FILE.npy per input (repeatable)"},
			&cli.IntFlag{Name: "calib-samples", Value: quantize.DefaultSamples, Usage: "`N` calibration samples (the first N, or N synthetic)"},
			&cli.StringFlag{Name: "preprocessor", Usage: "preprocessor_config.json `FILE` for --calib-images when SRC is a bare .onnx"},
			&cli.StringFlag{Name: "method", Value: string(quantize.Percentile), Usage: "activation range `METHOD`: percentile, entropy or minmax"},
			&cli.Float64Flag{Name: "percentile", Value: quantize.DefaultPercentile, Usage: "`P` of --method percentile"},
			&cli.StringFlag{Name: "activation-type", Value: string(quantize.Uint8), Usage: "activation integer `TYPE`: uint8 or int8 (asymmetric)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "leave nodes float whose name, output or input matches `GLOB` (repeatable)"},
			&cli.StringFlag{Name: "include-ops", Usage: "comma-separated `OPS` whose float inputs get QDQ too (e.g. Softmax)"},
			&cli.Float64Flag{Name: "min-cosine", Usage: "accuracy target `X`: leave the most sensitive nodes float until the mean output cosine with FP32 on held-out samples is ≥ X"},
			&cli.IntFlag{Name: "holdout", Value: quantize.DefaultHoldout, Usage: "with --min-cosine: `N` held-out samples (after the calibration samples)"},
			&cli.IntFlag{Name: "batch", Value: quantize.DefaultBatch, Usage: "calibration batch size `N`"},
			&cli.Uint64Flag{Name: "seed", Value: quantize.DefaultSeed, Usage: "`SEED` of synthetic calibration inputs"},
			&cli.IntFlag{Name: "threads", Usage: "`N` ONNX Runtime intra-op threads for calibration", DefaultText: "physical cores"},
			&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library `PATH`", DefaultText: "$" + ort.EnvLibraryPath + ", else the copy make ort fetched"},
			&cli.StringFlag{Name: "report", Usage: "write a calibration report (Markdown, JSON, PNG; per-tensor ranges and FP16 risk) into `DIR`"},
			&cli.BoolFlag{Name: "json", Usage: "print quantpack.json on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("quantize takes one SRC, got %d arguments", c.NArg())
			}
			cfg, err := quantizeConfig(c)
			if err != nil {
				return err
			}
			src, err := resolveInput("quantize", "SRC", c.Args().First())
			if err != nil {
				return err
			}
			return runQuantize(c.Context, src, outputPath(c), cfg, c.String("ort-lib"), c.Int("threads"), c.Bool("json"), os.Stdout)
		},
	}
}

func quantizeConfig(c *cli.Context) (quantize.Config, error) {
	m, err := quantize.ParseMethod(c.String("method"))
	if err != nil {
		return quantize.Config{}, usagef("%v", err)
	}
	at, err := quantize.ParseQType(c.String("activation-type"))
	if err != nil {
		return quantize.Config{}, usagef("%v", err)
	}
	if c.Int("threads") < 0 {
		return quantize.Config{}, usagef("--threads must be ≥ 0")
	}
	var ops []string
	for _, s := range strings.Split(c.String("include-ops"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			ops = append(ops, s)
		}
	}
	return quantize.Config{
		Options: quantize.Options{ActivationType: at, Exclude: c.StringSlice("exclude"), IncludeOps: ops},
		Method:  m, Percentile: c.Float64("percentile"),
		CalibImages: c.String("calib-images"), CalibData: c.StringSlice("calib-data"),
		Report: c.String("report"), MinCosine: c.Float64("min-cosine"), Holdout: c.Int("holdout"),
		Preprocessor: c.String("preprocessor"), Samples: c.Int("calib-samples"), Batch: c.Int("batch"), Seed: c.Uint64("seed"),
	}, nil
}

// quantizeOpener returns the calibration sessions' opener. ONNX Runtime is
// loaded on the first call (exit 6 when it cannot be), so that a bad SRC or
// bad calibration data is reported first, without a runtime.
func quantizeOpener(ortLib string, threads int) (quantize.OpenFunc, error) {
	return func(model []byte, dir string) (verify.Runner, error) {
		lib, err := ort.LibraryPath(ortLib)
		if err != nil {
			return nil, err
		}
		if err := ort.Init(lib); err != nil {
			return nil, err
		}
		if threads == 0 {
			p := verify.CollectProvenance()
			threads = max(p.PhysicalCores, 1)
		}
		s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: threads, ExternalDataDir: dir})
		if err != nil {
			return nil, err
		}
		return s, nil
	}, nil
}

func runQuantize(ctx context.Context, src, out string, cfg quantize.Config, ortLib string, threads int, asJSON bool, stdout io.Writer) error {
	open, err := quantizeOpener(ortLib, threads)
	if err != nil {
		return err
	}
	m, err := quantize.Run(ctx, src, out, cfg, open)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, m)
	}
	printQuantize(stdout, m, out)
	return nil
}

func printQuantize(w io.Writer, m *quantize.Manifest, out string) {
	fmt.Fprintf(w, "quantized %s to %s (static int8, %s activations, method %s)\n", m.Source.Path, out, m.ActivationType, m.Method)
	c := m.Calibration
	fmt.Fprintf(w, "  calibration  %d samples (%s)", c.Count, c.Kind)
	if c.Skipped > 0 {
		fmt.Fprintf(w, " (%d skipped: failed to decode)", c.Skipped)
	}
	if c.SHA256 != "" {
		fmt.Fprintf(w, ", sha256 %s", c.SHA256[:16])
	}
	fmt.Fprintln(w)
	var q []string
	for _, k := range slices.Sorted(maps.Keys(m.QuantizedNodes)) {
		q = append(q, fmt.Sprintf("%s×%d", k, m.QuantizedNodes[k]))
	}
	fmt.Fprintf(w, "  quantized    %s (%d activation tensors, %d weights)\n", strings.Join(q, " "), len(m.Activations), len(m.Weights))
	reasons := map[string]int{}
	for _, f := range m.Float {
		r := f.Reason
		if strings.HasPrefix(r, "--min-cosine") { // one reason per node (its rank): grouped
			r, _, _ = strings.Cut(r, ":")
			r += ": most sensitive on held-out samples (ranks in quantpack.json)"
		}
		reasons[f.OpType+": "+r]++
	}
	fmt.Fprintf(w, "  left float   %d nodes\n", len(m.Float))
	for _, k := range slices.Sorted(maps.Keys(reasons)) {
		fmt.Fprintf(w, "     %3d  %s\n", reasons[k], k)
	}
	if a := m.Accuracy; a != nil {
		fmt.Fprintf(w, "  accuracy     output cosine with FP32 %.5f (min %.5f) on %d held-out samples, target %g (all quantized: %.5f); %d nodes left float for it\n",
			a.Final.CosineMean, a.Final.CosineMin, a.Holdout.Count, a.MinCosine, a.AllQuantized.CosineMean, len(a.Excluded))
	}
	fmt.Fprintf(w, "  size         %s (%.3f× the source's %s)\n", human.Bytes(m.Sizes.TotalBytes), m.Sizes.Ratio, human.Bytes(m.Sizes.SourceBytes))
}

// int8Static is export's --int8-mode for the calibrated static QDQ form,
// made by exporting FP32 and running quantize's pass on it.
const int8Static = "static"

// exportStatic runs `export --precision int8 --int8-mode static`: an FP32
// export into a temporary directory (removed afterwards, and on
// interrupt), then the quantize pass into out.
func exportStatic(c *cli.Context, src, out string, opt convert.ExportOptions) (*quantize.Manifest, error) {
	if opt.Precision != convert.ExportInt8 {
		return nil, usagef("--int8-mode static needs --precision int8")
	}
	open, err := quantizeOpener(c.String("ort-lib"), 0)
	if err != nil {
		return nil, err
	}
	tmp, err := atomicfile.CreateDir(out + ".fp32")
	if err != nil {
		return nil, err
	}
	defer tmp.Abort()
	opt.Precision, opt.Int8Mode = convert.ExportFP32, ""
	fp32 := tmp.Join("fp32")
	if _, err := convert.Export(c.Context, src, fp32, opt); err != nil {
		return nil, err
	}
	cfg := quantize.Config{CalibImages: c.String("calib-images"), Samples: c.Int("calib-samples"),
		Origin: src + " (exported at fp32)"}
	if c.IsSet("min-cosine") { // quantize's accuracy target (quantpack quantize --min-cosine)
		cfg.MinCosine = c.Float64("min-cosine")
	}
	return quantize.Run(c.Context, fp32, out, cfg, open)
}

// exportStaticFlags are the flags export adds for --int8-mode static and
// study for its int8-static column; --calib-images is declared beside each
// command's other uses of it (export: tuneFlags; study: --sensitivity).
func exportStaticFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "calib-samples", Value: quantize.DefaultSamples, Usage: "`N` calibration samples of the static INT8 form (export --int8-mode static, study's int8-static column, and --method awq)"},
	}
}
