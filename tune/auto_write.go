package tune

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
)

// writeAuto writes the chosen mix as a normal artifact (export or convert,
// atomically), runs the written artifact once more on the calibration
// inputs, and records both in its manifest. Reached follows the confirming
// run: the artifact on disk is what counts.
func writeAuto(ctx context.Context, p *prepared, opt AutoOptions, base convert.Precision, over map[string]convert.Precision,
	rec *convert.AutoRecord) (*AutoResult, error) {
	co := opt.ConvertOptions
	co.Overrides, co.Auto, co.Progress = over, rec, nil
	if base != convert.NF4 {
		co.DoubleQuant = convert.SwitchOff
	}
	res := &AutoResult{Out: opt.Out, Record: rec}
	var m Metrics
	var doc any
	if opt.Export {
		if opt.OpenPath == nil {
			return nil, fmt.Errorf("%w: no model opener for the confirming run", ErrOption)
		}
		eo := opt.ExportOptions
		eo.Precision = convert.ExportPrecision(base)
		eo.Convert = co
		em, err := convert.Export(ctx, opt.Src, opt.Out, eo)
		if err != nil {
			return nil, err
		}
		res.Export, res.SizeBytes, doc = em, em.Sizes.TotalBytes, em
		r, err := opt.OpenPath(filepath.Join(opt.Out, "model.onnx"))
		if err != nil {
			return nil, err
		}
		m, err = p.ev.evalRunner(ctx, r)
		r.Close()
		if err != nil {
			return nil, err
		}
	} else {
		co.Precision = base
		am, err := convert.Convert(ctx, opt.Src, opt.Out, co)
		if err != nil {
			return nil, err
		}
		res.Artifact, res.SizeBytes, doc = am, am.Totals.BytesOut, am
		// The artifact's graph with its weights in a temporary data file
		// (artifacts past 2 GiB cannot be one graph encoding).
		dataDir, err := os.MkdirTemp("", "quantpack-confirm-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dataDir)
		model, err := convert.ArtifactGraph(opt.Out, opt.ExportOptions, dataDir)
		if err != nil {
			return nil, err
		}
		r, err := p.ev.opener(model, SessionOptions{DataDir: dataDir, Threads: p.ev.sess.Threads})
		if err != nil {
			return nil, err
		}
		m, err = p.ev.evalRunner(ctx, r)
		r.Close()
		if err != nil {
			return nil, err
		}
	}
	res.Confirmed = m
	c := autoMetrics(p.ev, m, rec.Measured.SizeRatio)
	rec.Confirmed = &c
	rec.Reached = opt.Target.holds(p.ev, m) && opt.Target.fits(rec.Measured.SizeRatio)
	if !rec.Reached && rec.Stop == "target reached" {
		rec.Stop = "target missed by the written artifact's run"
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(opt.Out, manifest.Name), append(b, '\n')); err != nil {
		return nil, err
	}
	return res, nil
}
