package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/human"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

func init() { register(newExportCommand()) }

func newExportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write an ONNX graph (model.onnx + model.onnx.data + quantpack.json) of a checkpoint or artifact",
		ArgsUsage: "SRC -o OUT --precision fp32|fp16|int8|int4|nf4|auto",
		Description: `SRC is a Hugging Face model directory or an artifact written by
quantpack convert. From a checkpoint at fp16/int8/int4/nf4, export converts
first (same policy and flags as convert) and exports that artifact; from an
artifact it reuses the artifact's codes and scales exactly (--precision must
match the artifact's, or be omitted).

Graph forms:
   fp32   MatMul with transposed fp32 weights
   fp16   whole graph in fp16, float32 inputs and outputs
   int8   --int8-mode dynamic: com.microsoft DynamicQuantizeMatMul (activations
          quantized per call, ORT's fast U8S8 CPU path); qdq: DequantizeLinear
          (per output channel) → MatMul, weights only
          static: calibrated W8A8 QDQ, the FP32 export then quantize's pass
          (--calib-images DIR, --calib-samples N; see quantpack quantize --help)
   int4   com.microsoft MatMulNBits (bits 4, accuracy_level 4 by default)
   nf4    com.microsoft MatMulBnb4 (bitsandbytes layout, absmax restored)

` + awqHelp + `
The input is pixel_values float32 [batch, C, H, W] with a dynamic batch;
outputs are named as transformers names them (logits, last_hidden_state,
pooler_output, cls_logits, distillation_logits). The image size comes from
--image-size, else preprocessor_config.json, else config.json; position
embeddings are resized at export time when it differs from the checkpoint's.
config.json and preprocessor_config.json are copied beside the graph; a
README.md model card (Hub front matter, sizes) is written.
OUT must not exist or be empty; it appears only when complete.

Example:
   quantpack export vit-base -o vit-onnx --precision fp32
   quantpack export vit-base -o vit-int8 --precision int8 --int8-mode qdq
   quantpack export vit-base -o vit-int4 --precision int4 --block-size 128 --method hqq
   quantpack synth --preset dinov2-base -o dinov2
   quantpack export dinov2 -o dino-518 --precision fp16 --image-size 518 --check

` + autoHelp + exitCodeHelp,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "`DIR` to create (absent or empty)", Required: true},
			&cli.StringFlag{Name: "precision", Aliases: []string{"p"}, Usage: "`P`: fp32, fp16, int8, int4, nf4 or auto", DefaultText: "the artifact's, or fp32"},
			&cli.StringFlag{Name: "int8-mode", Value: convert.Int8Dynamic, Usage: "int8 graph form `MODE`: dynamic, qdq or static (calibrated W8A8, see quantize)"},
			&cli.IntFlag{Name: "image-size", Usage: "input height and width `N`", DefaultText: "preprocessor_config.json, else config.json"},
			&cli.IntFlag{Name: "opset", Value: convert.DefaultOpset, Usage: "ONNX opset `N` of the default domain, 17 to 21"},
			&cli.BoolFlag{Name: "plain", Usage: "standard ONNX attention instead of com.microsoft MultiHeadAttention (debugging)"},
			&cli.IntFlag{Name: "int4-accuracy", Value: convert.DefaultInt4Accuracy, Usage: "MatMulNBits accuracy_level `N`: 1 fp32 math, 4 int8 activations (fast)"},
			&cli.IntFlag{Name: "block-size", Usage: "when converting: int4 or nf4 block size `N`", DefaultText: blockSizeDefault},
			&cli.BoolFlag{Name: "double-quant", Usage: "when converting to nf4: bitsandbytes double quant (on unless =false)"},
			&cli.BoolFlag{Name: "asymmetric", Usage: "when converting to int4: zero points"},
			&cli.StringFlag{Name: "method", Usage: "when converting to int4/nf4: `M` = rtn, mse, hqq (int4; implies --asymmetric) or awq (needs --calib-images)", DefaultText: methodDefault},
			&cli.StringFlag{Name: "rest-dtype", Value: convert.DefaultRestDType, Usage: "when converting: `DTYPE` of tensors that stay float (fp32, fp16, bf16)"},
			&cli.BoolFlag{Name: "check", Usage: "load the graph in ONNX Runtime, run one batch and print the output shapes"},
			&cli.StringFlag{Name: "ort-lib", Usage: "ONNX Runtime shared library `PATH` for --check", DefaultText: "$" + ort.EnvLibraryPath + ", else the copy make ort fetched"},
			&cli.BoolFlag{Name: "allow-unused", Usage: "export even when config.json leaves some tensors unused (they are dropped)"},
			&cli.BoolFlag{Name: "json", Usage: "print quantpack.json on stdout"},
		}, append(exportStaticFlags(), awqFlags(false)...)...), autoFlags(false)...),
		Action: func(c *cli.Context) error {
			if c.String("precision") == "auto" {
				return runAuto(c, true)
			}
			if err := checkUnusedAutoFlags(c, c.String("int8-mode") == int8Static); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usagef("export takes one SRC, got %d arguments", c.NArg())
			}
			opt := convert.ExportOptions{
				Int8Mode: c.String("int8-mode"), ImageSize: c.Int("image-size"), Opset: c.Int("opset"),
				Plain: c.Bool("plain"), Int4Accuracy: c.Int("int4-accuracy"), AllowUnused: c.Bool("allow-unused"),
				Convert: convert.Options{BlockSize: c.Int("block-size"), DoubleQuant: switchFlag(c, "double-quant"),
					Asymmetric: c.Bool("asymmetric"), Method: quant.Method(c.String("method")), RestDType: c.String("rest-dtype")},
			}
			if err := awqOptions(c, &opt.Convert); err != nil {
				return err
			}
			if p := c.String("precision"); p != "" {
				ep, err := convert.ParseExportPrecision(p)
				if err != nil {
					return usagef("%v", err)
				}
				opt.Precision = ep
			}
			if c.Bool("check") {
				// Find the runtime before writing anything.
				path, err := ort.LibraryPath(c.String("ort-lib"))
				if err != nil {
					return err
				}
				if err := ort.Init(path); err != nil {
					return err
				}
			}
			out := outputPath(c)
			vopt := opt
			if vopt.Int8Mode == int8Static { // exportStatic exports fp32 first
				vopt.Int8Mode = ""
			}
			if err := vopt.Validate(); err != nil {
				return err // before a download
			}
			src, origin, err := resolveSource(c, "export", "SRC", c.Args().First())
			if err != nil {
				return err
			}
			opt.Convert.Hub = origin
			if opt.Int8Mode == int8Static { // calibrated QDQ: cmd_quantize.go
				m, err := exportStatic(c, src, out, opt)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(os.Stdout, m)
				}
				printQuantize(os.Stdout, m, out)
				return nil
			}
			m, err := convert.Export(c.Context, src, out, opt)
			if err != nil {
				return err
			}
			if m.NonFiniteTensors > 0 && m.NonFinite != nil {
				fmt.Fprintf(os.Stderr, "warning: %d tensors of the exported weights hold NaN or ±Inf (source: %d NaN, %d Inf; converted: %d NaN, %d Inf); see quantpack.json non_finite\n",
					m.NonFiniteTensors, m.NonFinite.Source.NaN, m.NonFinite.Source.Inf, m.NonFinite.Output.NaN, m.NonFinite.Output.Inf)
			}
			var ran *exportCheck
			if c.Bool("check") {
				if ran, err = checkExport(c.Context, out, m); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				return printJSON(os.Stdout, m)
			}
			printExport(os.Stdout, m, out)
			if ran != nil {
				ran.print(os.Stdout)
			}
			return nil
		},
	}
}

// exportCheck is what export --check ran: the input it fed ONNX Runtime
// and the outputs it got back.
type exportCheck struct {
	ORTVersion string
	Input      string
	Shape      []int64
	Outputs    []verify.Tensor
}

// print says what ran and the shape of every output, so a passing --check
// is visible.
func (e *exportCheck) print(w io.Writer) {
	var outs []string
	for _, o := range e.Outputs {
		outs = append(outs, fmt.Sprintf("%s %v", o.Name, o.Shape))
	}
	fmt.Fprintf(w, "  check      ONNX Runtime %s ran one batch: %s %v → %s, all finite\n",
		e.ORTVersion, e.Input, e.Shape, strings.Join(outs, ", "))
}

// checkExport opens the export in ONNX Runtime and runs one batch of a
// deterministic pattern, so a graph ORT refuses fails here with ORT's message.
func checkExport(ctx context.Context, dir string, m *convert.ExportManifest) (*exportCheck, error) {
	s, err := ort.Open(filepath.Join(dir, "model.onnx"), ort.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	in := m.Inputs[0]
	shape := append([]int64{1}, in.Shape[1:]...)
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.01))
	}
	outs, err := s.Run(ctx, []verify.Tensor{{Name: in.Name, DType: verify.Float32, Shape: shape, F32: x}})
	if err != nil {
		return nil, err
	}
	for _, o := range outs {
		for i, v := range o.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%w: output %s[%d] is %v on the check input", ort.ErrRun, o.Name, i, v)
			}
		}
	}
	return &exportCheck{ORTVersion: ort.Version(), Input: in.Name, Shape: shape, Outputs: outs}, nil
}

func printExport(w io.Writer, m *convert.ExportManifest, out string) {
	fmt.Fprintf(w, "exported %s (%s) to %s\n", m.Architecture, m.Source.Path, out)
	mode := string(m.Precision)
	if m.Int8Mode != "" {
		mode += " " + m.Int8Mode
	}
	fmt.Fprintf(w, "  precision  %s, opset %d, %s graph, image %dx%d (%s)\n", mode, m.Opset, m.Graph, m.Image.Height, m.Image.Width, m.Image.From)
	fmt.Fprintf(w, "  size       %s (model.onnx %s + model.onnx.data %s)\n", human.Bytes(m.Sizes.TotalBytes), human.Bytes(m.Sizes.ModelBytes), human.Bytes(m.Sizes.DataBytes))
	var ios []string
	for _, o := range m.Outputs {
		ios = append(ios, fmt.Sprintf("%s %v", o.Name, o.Shape))
	}
	fmt.Fprintf(w, "  outputs    %s\n", strings.Join(ios, ", "))
	var ops []string
	for _, k := range slices.Sorted(maps.Keys(m.Ops)) {
		ops = append(ops, fmt.Sprintf("%s×%d", k, m.Ops[k]))
	}
	fmt.Fprintf(w, "  ops        %s\n", strings.Join(ops, " "))
}
