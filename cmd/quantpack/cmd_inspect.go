package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/human"
)

func init() { register(newInspectCommand()) }

func newInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "list a checkpoint's tensors, architecture and quantization",
		ArgsUsage: "PATH",
		Description: `PATH is a model directory, a .safetensors file, a sharded checkpoint, a
quantpack artifact or an export directory (its quantpack.json: operators,
sizes, and the per-layer mix of --precision auto). Reads headers only (and bitsandbytes' small quant_state
tensors), so it is instant on any size. Recognises quantization written by
others: bitsandbytes int8 (P.SCB) and nf4/fp4 (P.weight.quant_state.*), and
quantpack's int4 and per-channel int8.

Example:
   quantpack inspect vit-nf4
   quantpack inspect model.safetensors --json | jq .totals

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON on stdout"},
			&cli.BoolFlag{Name: "all", Usage: "list every tensor, not only the first 40"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("inspect takes one PATH, got %d arguments", c.NArg())
			}
			src, _, err := resolveSource(c, "inspect", "PATH", c.Args().First())
			if err != nil {
				return err
			}
			if ex, ok, err := convert.InspectExport(src); err != nil || ok {
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(os.Stdout, ex)
				}
				printExportInspection(os.Stdout, ex)
				return nil
			}
			in, err := convert.Inspect(src)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(os.Stdout, in)
			}
			printInspect(os.Stdout, in, c.Bool("all"))
			return nil
		},
	}
}

func printInspect(w io.Writer, in *convert.Inspection, all bool) {
	fmt.Fprintf(w, "%s: %d tensors, %s, %s params", in.Path, in.Totals.Tensors, human.Bytes(in.Totals.Bytes), human.Count(in.Totals.Params))
	if len(in.Files) > 1 {
		fmt.Fprintf(w, " in %d shards", len(in.Files))
	}
	fmt.Fprintln(w)
	if in.Architecture != "" {
		s := "supported"
		if !in.Supported {
			s = "not supported by export (convert --generic works)"
		}
		fmt.Fprintf(w, "architecture: %s (%s)\n", in.Architecture, s)
	}
	if in.Artifact != nil {
		fmt.Fprintf(w, "quantpack artifact: %s, %s, written by quantpack %s\n", in.Artifact.Format, in.Artifact.Precision, in.Artifact.Tool)
		printAutoRecord(w, in.Artifact.Auto)
	}
	var dts []string
	for d := range in.DTypes {
		dts = append(dts, d)
	}
	sort.Strings(dts)
	var parts []string
	for _, d := range dts {
		parts = append(parts, fmt.Sprintf("%s %s", d, human.Bytes(in.DTypes[d])))
	}
	fmt.Fprintf(w, "dtypes: %s\n", strings.Join(parts, ", "))
	if len(in.Quantization) == 0 {
		fmt.Fprintln(w, "quantization: none")
	}
	for _, q := range in.Quantization {
		fmt.Fprintf(w, "quantization: %s — %d weights, %s params (%s)", q.Scheme, q.Tensors, human.Count(q.Params), q.Writer)
		if len(q.Details) > 0 {
			fmt.Fprintf(w, "; %s", strings.Join(q.Details, "; "))
		}
		if len(q.Blocks) > 1 {
			fmt.Fprintf(w, "; weights per block: %s", blockCounts(q.Blocks))
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nname\tdtype\tshape\tbytes")
	for i, t := range in.Tensors {
		if !all && i == 40 {
			fmt.Fprintf(tw, "… %d more (--all)\t\t\t\n", len(in.Tensors)-40)
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\n", t.Name, t.DType, t.Shape, t.Bytes)
	}
	tw.Flush()
}

// blockCounts writes inspect's "64 ×12, 128 ×6": weights per block size,
// smallest block first.
func blockCounts(m map[int]int) string {
	var bs []int
	for b := range m {
		bs = append(bs, b)
	}
	sort.Ints(bs)
	var parts []string
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%d ×%d", b, m[b]))
	}
	return strings.Join(parts, ", ")
}
