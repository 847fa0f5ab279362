package tune

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
)

// ErrOption is an option out of range (exit 2).
var ErrOption = fault.New(fault.Usage, "tune: invalid option")

// SensitivityOptions configure Sensitivity.
type SensitivityOptions struct {
	// Src is the checkpoint directory.
	Src string
	// Precision each layer is quantized to: int8, int4 or nf4.
	Precision convert.Precision
	// Images is an ImageFolder of calibration images; "" means Samples
	// synthetic inputs.
	Images  string
	Samples int
	// LeaveOneOut also measures every layer quantized except one.
	LeaveOneOut bool
	// Workers is how many variants run at once (≤ 0: one per thread);
	// Threads is how many threads they share (≤ 0: the number of cores):
	// each session gets Threads/Workers intra-op threads, at least one.
	// The report does not depend on either.
	Workers int
	Threads int
	Open    Opener
	// Convert and Export carry block size, int8 mode, ... as for convert
	// and export.
	Convert convert.Options
	Export  convert.ExportOptions
	// Progress, when set, is called after each variant with the count done
	// and the total.
	Progress func(done, total int)
	// NoReuse runs every variant whole instead of from the stored FP32
	// activations before its layer (for checking the reuse).
	NoReuse bool
	// externalThreshold is convert.VariantOptions.ExternalThreshold (tests
	// set -1 to check the shared external data against inline graphs).
	externalThreshold int64
}

// SensitivityReport is the result of Sensitivity (sensitivity.json).
type SensitivityReport struct {
	Format       string            `json:"format"` // ReportFormat
	Source       string            `json:"source"`
	Architecture string            `json:"architecture"`
	Precision    convert.Precision `json:"precision"`
	Inputs       string            `json:"inputs"`
	Samples      int               `json:"samples"`
	Labelled     bool              `json:"labelled"`
	// BaselineTop1 is the FP32 labelled top-1 (labelled inputs only).
	BaselineTop1 *float64 `json:"baseline_top1,omitempty"`
	// AllQuantized is every layer at Precision, the reference row.
	AllQuantized Metrics       `json:"all_quantized"`
	Layers       []LayerResult `json:"layers"`
	Timing       Timing        `json:"timing"`
}

// LayerResult is one layer's row, in network order.
type LayerResult struct {
	Index  int     `json:"index"`
	Name   string  `json:"name"`
	Scheme string  `json:"scheme"`
	Params int64   `json:"params"`
	Alone  Metrics `json:"alone"` // only this layer quantized
	// AllBut is every layer quantized except this one (--leave-one-out).
	AllBut *Metrics `json:"all_but,omitempty"`
}

// Timing is where the time went, in seconds (wall clock).
type Timing struct {
	Prepare  float64 `json:"prepare_s"`  // conversion, inputs, FP32 run
	Reuse    float64 `json:"reuse_s"`    // the FP32 run that stores activations at the cuts
	Variants float64 `json:"variants_s"` // every variant graph built and run
	Total    float64 `json:"total_s"`
	// CPU is the process's CPU seconds over the run (all threads): on a
	// shared machine, CPU/Workers estimates the wall time the same run
	// takes with the cores to itself.
	CPU     float64 `json:"cpu_s"`
	Workers int     `json:"workers"`
	// Threads is each session's intra-op thread count.
	Threads int `json:"session_threads"`
	Runs    int `json:"variant_runs"`
	// Reused counts the runs that started from stored FP32 activations
	// instead of the input.
	Reused int `json:"reused_runs"`
}

// ReportFormat identifies sensitivity.json.
const ReportFormat = "quantpack-sensitivity/1"

// prepared is what both Sensitivity and Auto start from.
type prepared struct {
	v   *convert.Variants
	in  *Inputs
	ev  *evaluator
	dur time.Duration
}

func prepare(ctx context.Context, src string, precs []convert.Precision, images string, samples int,
	co convert.Options, eo convert.ExportOptions, open Opener, threads int, external int64) (*prepared, error) {
	if open == nil {
		return nil, fmt.Errorf("%w: no model opener", ErrOption)
	}
	start := time.Now()
	v, err := convert.OpenVariants(ctx, src, convert.VariantOptions{Precisions: precs, Convert: co, Export: eo, ExternalThreshold: external})
	if err != nil {
		return nil, err
	}
	p := &prepared{v: v}
	fail := func(err error) (*prepared, error) { v.Close(); return nil, err }
	if len(v.Layers()) == 0 {
		return fail(fmt.Errorf("%w: %s has no quantizable layer", convert.ErrUnsupported, src))
	}
	if p.in, err = LoadInputs(ctx, v.Dir(), images, samples); err != nil {
		return fail(err)
	}
	fp32, err := v.Build(nil, convert.FP32)
	if err != nil {
		return fail(err)
	}
	if p.ev, err = newEvaluator(ctx, p.in, open, SessionOptions{DataDir: v.DataDir(), Threads: threads}, fp32); err != nil {
		return fail(err)
	}
	p.dur = time.Since(start)
	return p, nil
}

// parallelism shares threads (≤ 0: the cores) among workers variants run
// at once (≤ 0: one per thread): it returns the workers and each session's
// intra-op threads, whose product stays within the threads.
func parallelism(workers, threads int) (nw, per int) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	nw = workers
	if nw <= 0 {
		nw = threads
	}
	return nw, max(1, threads/nw)
}

// Sensitivity quantizes each quantizable layer alone (the rest FP32) and
// measures the outputs against FP32 on the inputs; with LeaveOneOut also
// every layer but one. Variant graphs are built in memory and run in
// parallel; the FP32 outputs are computed once.
func Sensitivity(ctx context.Context, opt SensitivityOptions) (*SensitivityReport, error) {
	switch opt.Precision {
	case convert.Int8, convert.Int4, convert.NF4:
	default:
		return nil, fmt.Errorf("%w: --precision %q: want int8, int4 or nf4", ErrOption, opt.Precision)
	}
	start, cpu0 := time.Now(), cpuSeconds()
	nw, per := parallelism(opt.Workers, opt.Threads)
	p, err := prepare(ctx, opt.Src, []convert.Precision{opt.Precision}, opt.Images, opt.Samples, opt.Convert, opt.Export, opt.Open, nw*per, opt.externalThreshold)
	if err != nil {
		return nil, err
	}
	defer p.v.Close()
	layers := p.v.Layers()
	r := &SensitivityReport{Format: ReportFormat, Source: opt.Src, Architecture: p.v.Architecture(), Precision: opt.Precision,
		Inputs: p.in.Source, Samples: p.in.N, Labelled: p.ev.baseTop1 != nil, BaselineTop1: p.ev.baseTop1}
	all := map[string]convert.Precision{}
	for i, l := range layers {
		all[l.Name] = opt.Precision
		r.Layers = append(r.Layers, LayerResult{Index: i, Name: l.Name, Scheme: l.Schemes[opt.Precision], Params: l.Params})
	}
	// Jobs: -1 is all quantized; i alone; len+i all but i.
	jobs := []int{-1}
	for i := range layers {
		jobs = append(jobs, i)
	}
	if opt.LeaveOneOut {
		for i := range layers {
			jobs = append(jobs, len(layers)+i)
		}
	}
	rs := &reuse{}
	rstart := time.Now()
	if !opt.NoReuse {
		if rs, err = newReuse(ctx, p.v, p.ev); err != nil {
			return nil, err
		}
	}
	rdur := time.Since(rstart)
	// The FP32 runs above had the threads to themselves; the variants
	// share them.
	p.ev.sess.Threads = per
	var reused atomic.Int64
	allBut := make([]Metrics, len(layers))
	vstart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(nw)
	done := make(chan struct{}, len(jobs))
	for _, j := range jobs {
		g.Go(func() error {
			assign := map[string]convert.Precision{}
			switch {
			case j < 0:
				assign = all
			case j < len(layers):
				assign[layers[j].Name] = opt.Precision
			default:
				assign = maps.Clone(all)
				delete(assign, layers[j-len(layers)].Name)
			}
			var m Metrics
			if a := rs.byLayer[layerOf(j, layers)]; a != nil && j >= 0 && j < len(layers) {
				model, err := p.v.BuildCut(assign, convert.FP32, a.name, a.dims)
				if err != nil {
					return err
				}
				if m, err = p.ev.evalCut(gctx, model, a); err != nil {
					return err
				}
				reused.Add(1)
			} else {
				model, err := p.v.Build(assign, convert.FP32)
				if err != nil {
					return err
				}
				if m, err = p.ev.eval(gctx, model); err != nil {
					return err
				}
			}
			switch {
			case j < 0:
				r.AllQuantized = m
			case j < len(layers):
				r.Layers[j].Alone = m
			default:
				allBut[j-len(layers)] = m
			}
			done <- struct{}{}
			if opt.Progress != nil {
				opt.Progress(len(done), len(jobs))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if opt.LeaveOneOut {
		for i := range r.Layers {
			m := allBut[i]
			r.Layers[i].AllBut = &m
		}
	}
	r.Timing = Timing{Prepare: p.dur.Seconds(), Reuse: rdur.Seconds(), Variants: time.Since(vstart).Seconds(), Total: time.Since(start).Seconds(),
		CPU: cpuSeconds() - cpu0, Workers: nw, Threads: per, Runs: len(jobs), Reused: int(reused.Load())}
	return r, nil
}

// Ranked returns the layer indices from most to least sensitive by score
// (higher is more sensitive; ties keep network order).
func ranked(n int, score func(i int) float64) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		sa, sb := score(a), score(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return idx
}

// layerOf names job j's layer when it quantizes one layer alone ("" else).
func layerOf(j int, layers []convert.Layer) string {
	if j < 0 || j >= len(layers) {
		return ""
	}
	return layers[j].Name
}
