package main

import (
	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/study"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// studySensitivity reads --sensitivity: nil without it. The inputs are
// --calib-images, else --images, else --samples synthetic ones; ONNX
// Runtime is loaded by study before the variants are opened.
func studySensitivity(c *cli.Context, images string) (*study.SensitivityOptions, error) {
	p := c.String("sensitivity")
	if p == "" {
		return nil, nil
	}
	prec := convert.Precision(p)
	if prec != convert.Int8 && prec != convert.Int4 && prec != convert.NF4 {
		return nil, usagef("--sensitivity %q: want int8, int4 or nf4", p)
	}
	if calib := c.String("calib-images"); calib != "" {
		var err error
		if images, err = resolveInput("study", "--calib-images", calib); err != nil {
			return nil, err
		}
	}
	// One intra-op thread per variant session: variants run side by side.
	open := func(model []byte) (verify.Runner, error) {
		s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: 1})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return &study.SensitivityOptions{Precision: prec, Images: images, Samples: c.Int("samples"), Open: open}, nil
}
