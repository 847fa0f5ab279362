package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
)

func init() { register(newSynthCommand()) }

func newSynthCommand() *cli.Command {
	return &cli.Command{
		Name:      "synth",
		Usage:     "write a random-weight checkpoint with a real model's config (for benchmarks without downloads)",
		ArgsUsage: "--preset NAME -o DIR",
		Description: `Presets are the seed study's 16 models with the config.json and
preprocessor_config.json of their Hugging Face repos. Weights are random but
shaped like trained ones (normal, outlier feature columns, LayerNorm weights
near 1), deterministic by --seed, streamed to disk one tensor at a time.
Labels are LABEL_0..LABEL_999: accuracy on real images is meaningless for a
synthesized model; agreement with its own FP32 export is what to measure.

Example:
   quantpack synth --list
   quantpack synth --preset deit-tiny-patch16-224 -o deit-tiny

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Usage: "preset name (see --list)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "directory to create"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed"},
			&cli.IntFlag{Name: "threads", Usage: "generator threads (default: all cores); output does not depend on it"},
			&cli.BoolFlag{Name: "list", Usage: "list the presets"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("list") {
				ps := convert.Presets()
				if c.Bool("json") {
					type row struct{ Name, Repo, Architecture, Params string }
					var rows []row
					for _, p := range ps {
						rows = append(rows, row{p.Name, p.Repo, p.Arch, p.Params})
					}
					return printJSON(os.Stdout, rows)
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "preset\tparams\tarchitecture\tconfig from")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Params, p.Arch, p.Repo)
				}
				return tw.Flush()
			}
			if c.String("preset") == "" || c.String("output") == "" {
				return usagef("synth needs --preset NAME and -o DIR (or --list)")
			}
			res, err := convert.Synth(c.Context, c.String("preset"), c.String("output"), c.Uint64("seed"), c.Int("threads"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			fmt.Printf("%s: %s (%s), %d tensors, %.1fM params, %s\n", res.Dir, res.Preset, res.Arch, res.Tensors,
				float64(res.Params)/1e6, humanBytes(res.Bytes))
			return nil
		},
	}
}
