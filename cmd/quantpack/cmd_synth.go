package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/human"
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

With --list --json, prints one object:
   {"presets": [{"name": NAME, "repo": Hugging Face repo of the config,
                 "architecture": architectures[0], "params": "86M"}, ...]}

Example:
   quantpack synth --list
   quantpack synth --preset deit-tiny-patch16-224 -o deit-tiny

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Usage: "preset `NAME` (see --list)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "`DIR` to create (absent or empty)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random `SEED`"},
			&cli.IntFlag{Name: "threads", Usage: "`N` generator threads; output does not depend on it", DefaultText: "all cores"},
			&cli.BoolFlag{Name: "list", Usage: "list the presets"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("list") {
				ps := convert.Presets()
				if c.Bool("json") {
					return printJSON(os.Stdout, presetList(ps))
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
			res, err := convert.Synth(c.Context, c.String("preset"), outputPath(c), c.Uint64("seed"), c.Int("threads"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(os.Stdout, res)
			}
			fmt.Printf("%s: %s (%s), %d tensors, %.1fM params, %s\n", res.Dir, res.Preset, res.Arch, res.Tensors,
				float64(res.Params)/1e6, human.Bytes(res.Bytes))
			return nil
		},
	}
}

// PresetList is synth --list --json's output: one object, like every other
// command's --json.
type PresetList struct {
	Presets []PresetInfo `json:"presets"`
}

// PresetInfo is one preset in PresetList.
type PresetInfo struct {
	Name         string `json:"name"`
	Repo         string `json:"repo"`
	Architecture string `json:"architecture"`
	Params       string `json:"params"`
}

func presetList(ps []*convert.Preset) PresetList {
	out := PresetList{Presets: make([]PresetInfo, 0, len(ps))}
	for _, p := range ps {
		out.Presets = append(out.Presets, PresetInfo{Name: p.Name, Repo: p.Repo, Architecture: p.Arch, Params: p.Params})
	}
	return out
}
