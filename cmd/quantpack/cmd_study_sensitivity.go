package main

import (
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/tune"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// studySensitivity runs `quantpack sensitivity` for each study source when
// --sensitivity is given, into REPORTDIR/sensitivity-<i>-<name> (report,
// CSV, JSON and the layers × metric heatmap). ONNX Runtime is already
// loaded by study.
func studySensitivity(c *cli.Context, sources []string, out string, log func(string)) error {
	p := c.String("sensitivity")
	if p == "" {
		return nil
	}
	prec := convert.Precision(p)
	if prec != convert.Int8 && prec != convert.Int4 && prec != convert.NF4 {
		return usagef("--sensitivity %q: want int8, int4 or nf4", p)
	}
	images := c.String("calib-images")
	if images == "" {
		images = c.String("images")
	}
	for i, src := range sources {
		dir := filepath.Join(out, fmt.Sprintf("sensitivity-%d-%s", i, unsafeName.ReplaceAllString(filepath.Base(filepath.Clean(src)), "_")))
		r, err := tune.Sensitivity(c.Context, tune.SensitivityOptions{Src: src, Precision: prec, Images: images,
			Samples: c.Int("samples"), Open: tuneOpener, Convert: convert.Options{},
			Export: convert.ExportOptions{Int8Mode: c.String("int8-mode")}})
		if err != nil {
			return fmt.Errorf("sensitivity of %s: %w", src, err)
		}
		if err := tune.WriteSensitivity(dir, r); err != nil {
			return err
		}
		if log != nil {
			log(fmt.Sprintf("sensitivity %s at %s: %d layers in %.1f s → %s", src, prec, len(r.Layers), r.Timing.Total, dir))
		}
	}
	return nil
}
