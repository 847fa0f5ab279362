package main

import (
	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/quantize"
)

// awqHelp is the --method awq paragraph of convert's and export's help.
var awqHelp = `--method awq scales each 4-bit Linear's input channels by s = E|x|^α from
calibration activations (--calib-images DIR, at most --calib-samples N
images, run through the FP32 graph in ONNX Runtime), α chosen per layer from
0, 0.05 … 1 by the activation-weighted output error, and quantizes W·diag(s)
with a base block method (--awq-base; ` + awqBaseDefault + `). 1/s is
folded into the preceding LayerNorm (query/key/value, MLP input) or the value
projection (attention output); the MLP output dense, which nothing can
absorb, gets an explicit Mul in an export and stays unscaled in a convert
artifact. The layouts are unchanged; quantpack.json records α, the fold and
the calibration images' sha256 per layer.

`

// awqFlags are convert's and export's awq flags; --calib-images comes with
// the auto flags, export's --calib-samples with --int8-mode static.
func awqFlags(withSamples bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "awq-base", Usage: "with --method awq: block method `M` that quantizes the scaled weights (rtn, mse; hqq for int4)", DefaultText: awqBaseDefault},
	}
	if withSamples {
		fs = append(fs, &cli.IntFlag{Name: "calib-samples", Value: quantize.DefaultSamples, Usage: "with --method awq: at most `N` calibration images"})
	}
	return fs
}

// awqOptions sets opt's awq fields from the flags: the base method and,
// when --calib-images is given, the calibration (ONNX Runtime is loaded
// only when the conversion runs it). Validation (convert.Options.Validate)
// says what is missing.
func awqOptions(c *cli.Context, opt *convert.Options) error {
	opt.AWQBase = quant.Method(c.String("awq-base"))
	if c.String("calib-images") == "" {
		return nil
	}
	open, err := quantizeOpener(c.String("ort-lib"), 0)
	if err != nil {
		return err
	}
	opt.Calib = &convert.Calibration{Images: c.String("calib-images"), Samples: c.Int("calib-samples"), Open: open}
	return nil
}
