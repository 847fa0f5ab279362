package study

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify"
)

// PrecisionAuto is the study column of a --precision auto export: a
// per-layer mix searched to meet AutoOptions.Target, measured like every
// other precision and recommended when it wins.
const PrecisionAuto = "auto"

// AutoOptions configure the auto column (export --precision auto per
// model). The search calibrates on Images (an ImageFolder; kept apart from
// the study's --images, which the cell is then measured on) or Samples
// synthetic inputs.
type AutoOptions struct {
	Target     tune.Target
	Candidates []convert.Precision // default int4, int8, fp16
	Budget     time.Duration
	Images     string
	Samples    int
	// Open opens the in-memory variant graphs; OpenPath the written export
	// for the confirming run.
	Open     tune.Opener
	OpenPath func(path string) (verify.Runner, error)
}

// DefaultAutoCandidates are export --precision auto's --candidates default.
var DefaultAutoCandidates = []convert.Precision{convert.Int4, convert.Int8, convert.FP16}

// autoKeyParts are what an auto cell is made from besides the checkpoint
// and the export options every cell shares: the target, the candidates, the
// budget (a search it stops ends elsewhere) and the calibration inputs by
// content.
func (o *Options) autoKeyParts(calib string) []any {
	a := o.Auto
	return []any{a.Target.String(), a.Candidates, a.Budget.String(), a.Images, calib, a.Samples}
}

// runAutoExport writes model mi's --precision auto export into outDir and
// returns its manifest, its size on disk and the search record. A search
// that misses its target still wrote the closest mix: the cell is measured
// anyway (its record says so), and the recommendation judges it by the
// study's constraints like any other precision.
func runAutoExport(ctx context.Context, opt *Options, mi ModelInfo, outDir string) (*convert.ExportManifest, int64, *convert.AutoRecord, error) {
	a := opt.Auto
	cands := a.Candidates
	if len(cands) == 0 {
		cands = DefaultAutoCandidates
	}
	res, err := tune.Auto(ctx, tune.AutoOptions{Src: mi.Path, Out: outDir, Export: true, Candidates: cands, Target: a.Target,
		Budget: a.Budget, Images: a.Images, Samples: a.Samples, Open: a.Open, OpenPath: a.OpenPath,
		ConvertOptions: convert.Options{SourceHashes: mi.Sources}, ExportOptions: convert.ExportOptions{Int8Mode: opt.Int8Mode}})
	if err != nil && !(errors.Is(err, tune.ErrTargetUnreachable) && res != nil) {
		return nil, 0, nil, err
	}
	if res == nil || res.Export == nil {
		return nil, 0, nil, fmt.Errorf("auto: no export written to %s", outDir)
	}
	return res.Export, res.SizeBytes, res.Record, nil
}

// autoCalib is the content digest of the auto search's calibration images.
func autoCalib(ctx context.Context, opt *Options) (string, error) {
	if opt.Auto == nil {
		return "", nil
	}
	return inputsDigest(ctx, opt.Auto.Images, "")
}
