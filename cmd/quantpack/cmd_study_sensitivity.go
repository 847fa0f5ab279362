package main

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/study"
	"github.com/quantpack/quantpack/tune"
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
	return &study.SensitivityOptions{Precision: prec, Images: images, Samples: c.Int("samples"), Open: tuneOpener}, nil
}

// studyPrecisions reads --precisions; "auto" is the auto column, which
// convert's precision list does not hold.
func studyPrecisions(c *cli.Context) ([]convert.Precision, bool, error) {
	precs, err := study.ParsePrecisions(c.String("precisions"))
	if err != nil {
		return nil, false, usagef("--precisions: %v", err)
	}
	return precs, slices.Contains(precs, study.PrecisionAuto), nil
}

// studyAuto reads the auto column's flags.
func studyAuto(c *cli.Context) (*study.AutoOptions, error) {
	var t tune.Target
	for _, f := range []struct {
		name   string
		dst    **float64
		lo, hi float64
	}{{"auto-max-top1-drop", &t.MaxTop1Drop, 0, 100}, {"auto-min-cosine", &t.MinCosine, -1, 1}} {
		if !c.IsSet(f.name) {
			continue
		}
		v := c.Float64(f.name)
		if !(v >= f.lo && v <= f.hi) {
			return nil, usagef("--%s %g: want %g to %g", f.name, v, f.lo, f.hi)
		}
		*f.dst = &v
	}
	if t.MaxTop1Drop == nil && t.MinCosine == nil {
		t.MaxTop1Drop = optFloat(c, "max-top1-drop")
	}
	if t.MaxTop1Drop == nil && t.MinCosine == nil {
		return nil, usagef("--precisions auto needs a search target: --auto-max-top1-drop PP, --auto-min-cosine C or --max-top1-drop PP")
	}
	cands, err := tune.ParseCandidates(c.String("auto-candidates"))
	if err != nil {
		return nil, usagef("--auto-candidates: %v", err)
	}
	if c.Duration("auto-budget") < 0 || c.Int("samples") < 0 {
		return nil, usagef("--auto-budget and --samples must be ≥ 0")
	}
	a := &study.AutoOptions{Target: t, Candidates: cands, Budget: c.Duration("auto-budget"), Samples: c.Int("samples")}
	if calib := c.String("calib-images"); calib != "" {
		if a.Images, err = resolveInput("study", "--calib-images", calib); err != nil {
			return nil, err
		}
	}
	a.Open = tuneOpener
	a.OpenPath = func(path string) (verify.Runner, error) {
		s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return a, nil
}
