package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/human"
	"github.com/quantpack/quantpack/quant"
)

func init() { register(newConvertCommand()) }

func newConvertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "write a quantized Hugging Face-layout artifact (safetensors + config.json + quantpack.json)",
		ArgsUsage: "SRC -o OUT --precision fp16|bf16|int8|int4|nf4|auto",
		Description: `SRC is a Hugging Face model directory (config.json + model.safetensors, or a
sharded model.safetensors.index.json) or a single .safetensors file.

Linear weights (2-D, both dims ≥ 16) are quantized; the classifier head,
norms, biases, tokens, position embeddings and (for ViT-style models) the patch
embedding stay float in --rest-dtype. MobileViT's convolutions become
per-channel int8 at int8/int4/nf4. --keep adds exceptions (a glob over tensor
names, or a module prefix).

Layouts:
   fp16, bf16  every float tensor converted (round to nearest even; fp16
               overflow counted and reported)
   int8        bitsandbytes LLM.int8: P.weight (I8), P.SCB, P.weight_format;
               loadable with transformers + bitsandbytes
   int4        MatMulNBits layout: P.weight (U8 [N, k_blocks, block/2], low
               nibble first), P.weight_scale (F32), P.weight_zero_point when
               asymmetric (--asymmetric, or --method hqq); read
               by quantpack export
   nf4         bitsandbytes Params4bit: P.weight, P.weight.absmax, quant_map,
               nested_* with double quant, quant_state JSON; loadable with
               transformers + bitsandbytes

--method picks each 4-bit block's scale (and zero point) in the same layout:
rtn rounds the min/max range (ORT's and bitsandbytes' quantizers, bit for
bit); mse searches a clipping factor per block for the least squared error;
hqq (int4, asymmetric) fits scale and zero point by half-quadratic
optimisation. ` + int4DefaultText + `, ONNX Runtime's fast CPU form
(docs/accuracy.md); --method rtn --block-size 32 gives the previous
symmetric round-to-nearest layout. Without --block-size a Linear whose
input width K is not a multiple of the default block gets, per tensor,
block 64 or 128, whichever stores it in fewer bytes (K = 192: 64
instead of padding to 256); an explicit --block-size is used as given.
The manifest records the method and each tensor's block; the per-tensor
SQNR shows the gain.

` + awqHelp + `An already-quantized SRC (a quantpack int8/int4/nf4 artifact, a bitsandbytes
checkpoint) is refused with exit 4: converting it would relabel its codes.
--dequantize-input converts its float32 reconstruction instead, and
quantpack.json records that ("dequantized"). NaN or ±Inf in a tensor are
counted and reported ("non_finite"); --fail-on-nonfinite makes them exit 3.

A README.md model card (Hub front matter, size and error table) is written
beside the weights. Output is byte-identical for any --threads. OUT must not
exist or be empty; it appears only when the conversion is complete.

Example:
   quantpack synth --preset vit-base-patch16-224 -o vit-base
   quantpack convert vit-base -o vit-nf4 --precision nf4
   quantpack convert model.safetensors -o out --precision int8 --json
   quantpack convert vit-base -o vit-int4 --precision int4 --block-size 128 --method hqq
   quantpack convert vit-28 -o v28-awq --precision int4 --method awq --calib-images calib --calib-samples 128

` + autoHelp + exitCodeHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "artifact `DIR` to create (absent or empty)", Required: true},
			&cli.StringFlag{Name: "precision", Aliases: []string{"p"}, Usage: "`P`: fp16, bf16, int8, int4, nf4 or auto", Required: true},
			&cli.IntFlag{Name: "block-size", Usage: "int4 or nf4 block size `N`", DefaultText: blockSizeDefault},
			&cli.BoolFlag{Name: "double-quant", Usage: "nf4: quantize the block absmax values too (bitsandbytes double quant; on unless =false)"},
			&cli.BoolFlag{Name: "asymmetric", Usage: "int4: min/max blocks with zero points instead of symmetric"},
			&cli.StringFlag{Name: "method", Usage: "int4/nf4 block scales `M`: rtn (round to nearest), mse (clipping search), hqq (int4 only, implies --asymmetric), awq (calibrated input scaling, needs --calib-images); see docs/accuracy.md", DefaultText: methodDefault},
			&cli.StringSliceFlag{Name: "keep", Usage: "keep tensors matching this `GLOB` (or module prefix) float; repeatable"},
			&cli.StringFlag{Name: "rest-dtype", Value: convert.DefaultRestDType, Usage: "`DTYPE` of tensors that stay float: fp32, fp16 or bf16"},
			&cli.IntFlag{Name: "threads", Usage: "`N` worker threads", DefaultText: "all cores"},
			&cli.BoolFlag{Name: "generic", Usage: "convert an architecture quantpack does not know, Linear-only policy"},
			&cli.Int64Flag{Name: "shard-bytes", Usage: "shard model.safetensors past `BYTES`", DefaultText: "5 GB"},
			&cli.BoolFlag{Name: "no-stats", Usage: "skip per-tensor error statistics (faster)"},
			&cli.BoolFlag{Name: "dequantize-input", Usage: "accept an already-quantized SRC: dequantize it to float32 first (recorded in quantpack.json)"},
			&cli.BoolFlag{Name: "fail-on-nonfinite", Usage: "exit 3 and write nothing when a tensor holds NaN or ±Inf (source or output)"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON on stdout"},
		}, append(awqFlags(true), autoFlags(true)...)...),
		Action: func(c *cli.Context) error {
			if c.String("precision") == "auto" {
				return runAuto(c, false)
			}
			if err := checkUnusedAutoFlags(c, false); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usagef("convert takes one SRC, got %d arguments", c.NArg())
			}
			p, err := convert.ParsePrecision(c.String("precision"))
			if err != nil {
				return usagef("%v", err)
			}
			out := outputPath(c)
			opt := convert.Options{
				Precision: p, BlockSize: c.Int("block-size"), Asymmetric: c.Bool("asymmetric"), Method: quant.Method(c.String("method")),
				DoubleQuant: switchFlag(c, "double-quant"),
				Keep:        c.StringSlice("keep"), RestDType: c.String("rest-dtype"), Threads: c.Int("threads"),
				Generic: c.Bool("generic"), ShardBytes: c.Int64("shard-bytes"), NoStats: c.Bool("no-stats"),
				FailOnNonFinite: c.Bool("fail-on-nonfinite"), DequantizeInput: c.Bool("dequantize-input"),
			}
			if err := awqOptions(c, &opt); err != nil {
				return err
			}
			if err := opt.Validate(); err != nil {
				return err // before a download
			}
			src, origin, err := resolveSource(c, "convert", "SRC", c.Args().First())
			if err != nil {
				return err
			}
			opt.Hub = origin
			bar := newProgress("convert")
			opt.Progress = bar.Set
			m, err := convert.Convert(c.Context, src, out, opt)
			bar.Done()
			if err != nil {
				return err
			}
			warnNonFinite(os.Stderr, m)
			if c.Bool("json") {
				return printJSON(os.Stdout, convertSummary(m, out))
			}
			printConvertTable(os.Stdout, m, src, out)
			return nil
		},
	}
}

// ConvertSummary is convert's --json output (schema in the README).
type ConvertSummary struct {
	Output          string   `json:"output"`
	Precision       string   `json:"precision"`
	Architecture    string   `json:"architecture"`
	BytesIn         int64    `json:"bytes_in"`
	BytesOut        int64    `json:"bytes_out"`
	Ratio           float64  `json:"ratio"`
	BitsPerParam    float64  `json:"bits_per_param"`
	Params          int64    `json:"params"`
	QuantizedParams int64    `json:"quantized_params"`
	Tensors         int      `json:"tensors"`
	FP16Overflow    int64    `json:"fp16_overflow"`
	MinSQNRdB       *float64 `json:"min_sqnr_db"`
	WorstTensor     string   `json:"worst_tensor,omitempty"`
	// NonFiniteTensors and NonFinite: tensors with NaN or ±Inf values
	// (min_sqnr_db is then null and worst_tensor names the first).
	NonFiniteTensors int                `json:"non_finite_tensors"`
	NonFinite        *convert.NonFinite `json:"non_finite,omitempty"`
}

func convertSummary(m *convert.Manifest, out string) ConvertSummary {
	t := m.Totals
	return ConvertSummary{Output: out, Precision: string(m.Precision), Architecture: m.Architecture,
		BytesIn: t.BytesIn, BytesOut: t.BytesOut, Ratio: t.Ratio, BitsPerParam: t.BitsPerParam,
		Params: t.Params, QuantizedParams: t.QuantizedParams, Tensors: t.TensorsIn,
		FP16Overflow: t.FP16Overflow, MinSQNRdB: t.MinSQNRdB, WorstTensor: t.WorstTensor,
		NonFiniteTensors: t.NonFiniteTensors, NonFinite: t.NonFinite}
}

func printConvertTable(w io.Writer, m *convert.Manifest, src, out string) {
	t := m.Totals
	from := src
	if m.Hub != nil {
		from = m.Hub.Repo + "@" + m.Hub.Commit[:12]
	}
	fmt.Fprintf(w, "%s → %s (%s, %s)\n", from, out, m.Precision, m.Architecture)
	fmt.Fprintf(w, "size: %s → %s (%.3f×), %.2f bits/param, %d of %d params quantized\n",
		human.Bytes(t.BytesIn), human.Bytes(t.BytesOut), t.Ratio, t.BitsPerParam, t.QuantizedParams, t.Params)
	if t.FP16Overflow > 0 {
		fmt.Fprintf(w, "warning: %d values overflowed fp16 and became ±Inf\n", t.FP16Overflow)
	}
	// The five worst tensors by SQNR tell a user where the error went.
	recs := append([]*convert.TensorRecord(nil), m.Tensors...)
	sort.SliceStable(recs, func(i, j int) bool { return sqnr(recs[i]) < sqnr(recs[j]) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "worst tensors\tscheme\tSQNR dB\tcosine\tmax abs")
	for i, r := range recs {
		if i == 5 {
			break
		}
		if nf := r.NonFinite; nf != nil {
			fmt.Fprintf(tw, "%s\t%s\tNaN/Inf\t%d NaN, %d Inf in\t%d NaN, %d Inf out\n", r.Name, r.Scheme,
				nf.Source.NaN, nf.Source.Inf, nf.Output.NaN, nf.Output.Inf)
			continue
		}
		if r.Error == nil || r.Error.SQNRdB == nil {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.6f\t%.3g\n", r.Name, r.Scheme, *r.Error.SQNRdB, r.Error.Cosine, r.Error.MaxAbs)
	}
	tw.Flush()
}

// warnNonFinite tells the user, on stderr whatever the output format, which
// tensors hold NaN or ±Inf.
func warnNonFinite(w io.Writer, m *convert.Manifest) {
	t := m.Totals
	if t.NonFiniteTensors == 0 {
		return
	}
	nf := t.NonFinite
	fmt.Fprintf(w, "warning: %d tensors hold NaN or ±Inf (source: %d NaN, %d Inf; output: %d NaN, %d Inf), first %s; "+
		"their error is unbounded (--fail-on-nonfinite makes this exit 3)\n",
		t.NonFiniteTensors, nf.Source.NaN, nf.Source.Inf, nf.Output.NaN, nf.Output.Inf, t.WorstTensor)
}

func sqnr(r *convert.TensorRecord) float64 {
	if r.NonFinite != nil {
		return -1e300 // unbounded error: first
	}
	if r.Error == nil || r.Error.SQNRdB == nil {
		return 1e300
	}
	return *r.Error.SQNRdB
}
