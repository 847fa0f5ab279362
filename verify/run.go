package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

// Opener opens a model file as a Runner. The command line passes one that
// opens ONNX Runtime sessions with the device and threads of the run;
// tests pass fakes.
type Opener func(modelPath string) (Runner, error)

// MemoryProbe measures the peak resident memory of a separate process that
// loads the model at modelPath and runs it at batch size batch; an empty
// modelPath asks for a process that only initialises the runtime. The
// command line re-executes itself (quantpack verify --child-measure).
type MemoryProbe func(ctx context.Context, modelPath string, batch int) (ChildMemory, error)

// ErrOption is an Options value out of range (exit 2).
var ErrOption = fault.New(fault.Usage, "verify: invalid option")

// Defaults of Options.
const (
	DefaultWarmup  = 5
	DefaultIters   = 30
	DefaultSamples = 16
	DefaultSeed    = 1
	// maxRounds is how many alternating blocks the timed runs of the two
	// models are split into (see timePair).
	maxRounds = 4
)

// Options configure Compare.
type Options struct {
	// Baseline and Candidate are export directories or .onnx files.
	Baseline, Candidate string
	// Runtime is how both models are run and timed, Inputs what they are
	// compared on.
	Runtime
	Inputs
	Gates Gates
	// Previous is a stored report of an earlier run (--baseline-report)
	// that Regression's gates compare this run with; nil skips them.
	// PreviousPath names it in the report.
	Previous     *Report
	PreviousPath string
	Regression   RegressionGates
}

func (o *Options) normalize() error {
	if o.Open == nil {
		return errors.New("verify: Options.Open is nil")
	}
	if err := o.Runtime.Normalize(); err != nil {
		return err
	}
	return o.Inputs.Normalize()
}

// Compare runs the baseline and candidate models on the same inputs and
// reports their agreement, accuracy (with labelled images), latency and
// throughput per batch size, memory, sizes, node placement and the gates.
//
// The steps, in order: open both models (Options.Open); a comparison pass
// over every input at the first batch size; timed runs per batch size on
// deterministic synthetic inputs (never zeros), alternating between the
// models; memory through Options.Memory; placement where the Runner can
// report it. When a gate fails, Compare returns the full report together
// with a *GateError (wrapping fault.ErrGate).
func Compare(ctx context.Context, opt Options) (*Report, error) {
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	if err := opt.checkPrevious(); err != nil {
		return nil, err
	}
	bModel, bDir, err := modelPaths(opt.Baseline)
	if err != nil {
		return nil, err
	}
	cModel, _, err := modelPaths(opt.Candidate)
	if err != nil {
		return nil, err
	}
	r := &Report{Format: ReportFormat}
	if r.Baseline, err = describeModel(opt.Baseline, bModel); err != nil {
		return nil, err
	}
	if r.Candidate, err = describeModel(opt.Candidate, cModel); err != nil {
		return nil, err
	}
	p, closeAll, err := openPair(opt.Runtime, bModel, cModel)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	ran := p.applied
	r.Device, r.ORTVersion = ran.Device, ran.ORTVersion
	pre, err := preprocessorFor(bDir, p)
	if err != nil {
		return nil, err
	}
	r.Baseline.Output, r.Candidate.Output = p.out.name, p.out.name

	loader, err := opt.loader(pre, bDir, &r.Inputs)
	if err != nil {
		return nil, err
	}
	r.Inputs.Height, r.Inputs.Width = p.h, p.w
	r.Inputs.Preprocessor = pre.Config().Source
	ag, err := compareOutputs(ctx, p, loader, opt.BatchSizes[0])
	if err != nil {
		return nil, err
	}
	r.Agreement, r.Accuracy = ag.agreement, ag.accuracy
	r.Inputs.Total, r.Inputs.Used, r.Inputs.Labelled = loader.Len(), loader.Loaded(), ag.labelled
	r.Inputs.Skipped = len(loader.Skipped())
	r.Inputs.Errors = append([]SkippedImage{}, loader.Skipped()...)

	r.Inputs.TimingInputs = fmt.Sprintf("synthetic, seed %d (the same tensor for both models)", opt.Seed)
	blocks := map[string][][]float64{}
	for _, b := range opt.BatchSizes {
		sb, sc, bl, err := timePair(ctx, p, pre, b, opt.Seed, opt.Warmup, opt.Iters)
		if err != nil {
			return nil, err
		}
		blocks["baseline"] = append(blocks["baseline"], bl[0])
		blocks["candidate"] = append(blocks["candidate"], bl[1])
		r.Baseline.Batches = append(r.Baseline.Batches, BatchReport{Batch: b, LatencyMs: sb, ThroughputSPS: sb.Throughput(b)})
		r.Candidate.Batches = append(r.Candidate.Batches, BatchReport{Batch: b, LatencyMs: sc, ThroughputSPS: sc.Throughput(b)})
	}
	if err := placement(p, ran.Device, &r.Placement); err != nil {
		return nil, err
	}
	closeAll() // free both sessions before the memory children run
	if opt.Memory != nil {
		if err := measureMemory(ctx, opt.Memory, ran.Device, bModel, cModel, r); err != nil {
			return nil, err
		}
	} else {
		r.Memory.Note = "not measured"
		r.Memory.GPUNote = "not measured: no memory children ran"
	}
	r.Statistics = statistics(r, ag.kls, blocks)
	finish(r, opt, ran)
	if len(r.Gates.Failed) > 0 {
		return r, &GateError{Failed: r.Gates.Failed}
	}
	return r, nil
}

// finish fills the figures derived from the measurements and the gates;
// the runtime provenance is what the sessions ran with.
func finish(r *Report, opt Options, ran Applied) {
	for _, m := range []*ModelReport{&r.Baseline, &r.Candidate} {
		first := m.Batches[0]
		m.LatencyMs, m.ThroughputSPS, m.PeakRSSMB, m.GPUMB = first.LatencyMs, first.ThroughputSPS, first.PeakRSSMB, first.GPUMB
	}
	if c := r.Candidate.LatencyMs.P50; c > 0 {
		r.Speedup = r.Baseline.LatencyMs.P50 / c
	}
	if r.Baseline.SizeBytes > 0 {
		r.SizeRatio = float64(r.Candidate.SizeBytes) / float64(r.Baseline.SizeBytes)
	}
	prov := CollectProvenance()
	r.Provenance = RunProvenance{Provenance: prov, ORTVersion: ran.ORTVersion, Device: ran.Device, EPLibrary: ran.EPLibrary,
		Threads: ran.Threads, BatchSizes: opt.BatchSizes, Warmup: opt.Warmup, Iters: opt.Iters,
		BaselineSHA256: r.Baseline.Files[0].SHA256, CandidateSHA256: r.Candidate.Files[0].SHA256}
	opt.Gates.evaluate(r)
	if opt.Previous != nil {
		r.Regression = compareWithPrevious(r, opt.Previous, opt.PreviousPath, opt.Regression)
	}
}

func describeModel(arg, model string) (ModelReport, error) {
	files, size, err := manifest.HashModelFiles(model)
	if err != nil {
		return ModelReport{}, err
	}
	return ModelReport{Path: arg, Model: model, SizeBytes: size, Files: files}, nil
}

// openPair opens both models and checks that they take the same input,
// share an output to compare and run with the same runtime settings
// (p.applied). closeAll is idempotent.
func openPair(rt Runtime, bModel, cModel string) (*pair, func(), error) {
	p := &pair{basePath: bModel, candPath: cModel}
	closeAll := func() {
		if p.base != nil {
			p.base.Close()
			p.base = nil
		}
		if p.cand != nil {
			p.cand.Close()
			p.cand = nil
		}
	}
	var err error
	var ranC Applied
	if p.base, p.applied, err = rt.open(bModel); err != nil {
		return nil, nil, err
	}
	if p.cand, ranC, err = rt.open(cModel); err != nil {
		closeAll()
		return nil, nil, err
	}
	fail := func(err error) (*pair, func(), error) { closeAll(); return nil, nil, err }
	if ranC != p.applied {
		// One opener opens both; this is a bug, not the user's input.
		return fail(fmt.Errorf("verify: internal: baseline runs with %+v, candidate with %+v", p.applied, ranC))
	}
	in, h, w, err := imageInput(p.base, bModel)
	if err != nil {
		return fail(err)
	}
	inC, hc, wc, err := imageInput(p.cand, cModel)
	if err != nil {
		return fail(err)
	}
	if in.Name != inC.Name || h != hc || w != wc {
		return fail(fmt.Errorf("%w: baseline input %q %v, candidate input %q %v", ErrMismatch, in.Name, in.Shape, inC.Name, inC.Shape))
	}
	p.input, p.h, p.w = in, h, w
	if p.out, err = chooseOutput(p.base, p.cand); err != nil {
		return fail(err)
	}
	return p, closeAll, nil
}

// preprocessorFor loads the preprocessing beside the baseline model. For a
// bare .onnx file with neither preprocessor_config.json nor config.json
// beside it, it falls back to ViTImageProcessor's defaults at the model's
// square input size, and says so in the config's Source. Its output size
// must be the model's input size; p.h and p.w are set from it when the
// model's are dynamic.
func preprocessorFor(dir string, p *pair) (*Preprocessor, error) {
	pre, err := LoadPreprocessor(dir)
	if err != nil && errors.Is(err, fs.ErrNotExist) && p.h > 0 && p.h == p.w {
		cfg, derr := DefaultPreprocessorConfig("vit", p.h)
		if derr != nil {
			return nil, derr
		}
		cfg.Source = fmt.Sprintf("ViTImageProcessor defaults at %d×%d: no preprocessor_config.json or config.json in %s", p.h, p.w, dir)
		pre, err = NewPreprocessor(cfg)
	}
	if err != nil {
		return nil, err
	}
	h, w, ok := pre.FixedSize()
	if !ok {
		return nil, fmt.Errorf("%w: %s: preprocessing has no fixed output size", ErrModelIO, pre.Config().Source)
	}
	if (p.h > 0 && h != p.h) || (p.w > 0 && w != p.w) {
		return nil, fmt.Errorf("%w: %s makes %d×%d images, the model takes %d×%d", ErrMismatch, pre.Config().Source, h, w, p.h, p.w)
	}
	p.h, p.w = h, w
	return pre, nil
}

// loader makes the Loader of the comparison pass and fills what inputs
// says about it.
func (o *Options) loader(pre *Preprocessor, dir string, inputs *InputsReport) (*Loader, error) {
	if o.Images == "" {
		inputs.Kind, inputs.Seed = "synthetic", o.Seed
		return NewSyntheticLoader(pre, o.Samples, o.Seed)
	}
	inputs.Kind, inputs.Dir = "images", o.Images
	var labels []string
	var err error
	switch {
	case o.Labels != "":
		labels, err = ReadLabelsFile(o.Labels)
	default:
		cfg := filepath.Join(dir, "config.json")
		if _, serr := os.Stat(cfg); serr == nil {
			labels, err = LoadID2Label(cfg)
			if errors.Is(err, ErrBadDataset) {
				labels, err = nil, nil // no id2label: folders are classes in sorted order
			}
		}
	}
	if err != nil {
		return nil, err
	}
	ds, err := ImageFolder(o.Images, labels)
	if err != nil {
		return nil, err
	}
	return NewLoader(ds, pre, o.Workers)
}

// timePair times both models at batch size b on the same synthetic input.
// The timed runs alternate in up to maxRounds blocks, in the order
// baseline, candidate, candidate, baseline, ..., so that a slow stretch of
// a shared machine falls on both models rather than one; each model's
// warm-up runs before its first block. Only the Run call is timed
// (Measure). blocks are each model's per-block p50s: the run's noise.
func timePair(ctx context.Context, p *pair, pre *Preprocessor, b int, seed uint64, warmup, iters int) (sb, sc LatencyStats, blocks [2][]float64, err error) {
	l, err := NewSyntheticLoader(pre, b, seed)
	if err != nil {
		return sb, sc, blocks, err
	}
	buf := make([]float32, b*l.SampleLen())
	if _, err := l.Next(ctx, b, buf); err != nil {
		return sb, sc, blocks, err
	}
	in := []Tensor{{Name: p.input.Name, DType: Float32, Shape: []int64{int64(b), 3, int64(p.h), int64(p.w)}, F32: buf}}
	runB := func() error { _, err := p.base.Run(ctx, in); return err }
	runC := func() error { _, err := p.cand.Run(ctx, in); return err }
	db := make([]time.Duration, 0, iters)
	dc := make([]time.Duration, 0, iters)
	rounds := min(iters, maxRounds)
	for k := range rounds {
		n := iters*(k+1)/rounds - iters*k/rounds
		w := 0
		if k == 0 {
			w = warmup
		}
		order := []struct {
			fn    func() error
			dst   *[]time.Duration
			path  string
			block *[]float64
		}{{runB, &db, p.basePath, &blocks[0]}, {runC, &dc, p.candPath, &blocks[1]}}
		if k%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, o := range order {
			d, err := Measure(ctx, o.fn, w, n)
			if err != nil {
				return sb, sc, blocks, fmt.Errorf("%s, batch %d: %w", o.path, b, err)
			}
			*o.dst = append(*o.dst, d...)
			*o.block = append(*o.block, NewLatencyStats(d).P50)
		}
	}
	return NewLatencyStats(db), NewLatencyStats(dc), blocks, nil
}

// placer is implemented by runners that know where each node ran
// (verify/ort's Session).
type placer interface {
	Placement() (Placement, error)
}

// placement asks each runner for its node placement. Node lists are kept
// only for nodes that fell back to the CPU.
func placement(p *pair, device string, dst *PlacementReport) error {
	get := func(r Runner) (*Placement, error) {
		pl, ok := r.(placer)
		if !ok {
			return nil, nil
		}
		v, err := pl.Placement()
		if err != nil {
			return nil, err
		}
		if v.FellBackToCPU == 0 || device == "" || device == "cpu" {
			v.Nodes = nil
		}
		return &v, nil
	}
	var err error
	if dst.Baseline, err = get(p.base); err != nil {
		return fmt.Errorf("baseline %s: %w", p.basePath, err)
	}
	if dst.Candidate, err = get(p.cand); err != nil {
		return fmt.Errorf("candidate %s: %w", p.candPath, err)
	}
	return nil
}

const bytesPerMB = 1 << 20

func mb(v int64) *float64 { f := float64(v) / bytesPerMB; return &f }

// measureMemory runs the memory probe for the runtime alone and for each
// model at each batch size. GPU memory comes from the model children on
// device cuda (gpuSummary).
func measureMemory(ctx context.Context, probe MemoryProbe, device, bModel, cModel string, r *Report) error {
	rt, err := probe(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("verify: measuring the runtime's own memory: %w", err)
	}
	r.Memory = MemoryReport{Measured: true, RuntimeRSSMB: mb(rt.PeakBytes), Method: "child-vmhwm"}
	self := rt.SelfReported
	var gpu gpuTally
	for _, m := range []struct {
		model string
		rep   *ModelReport
	}{{bModel, &r.Baseline}, {cModel, &r.Candidate}} {
		for i := range m.rep.Batches {
			b := &m.rep.Batches[i]
			cm, err := probe(ctx, m.model, b.Batch)
			if err != nil {
				return fmt.Errorf("verify: measuring the memory of %s at batch %d: %w", m.model, b.Batch, err)
			}
			self = self && cm.SelfReported
			b.PeakRSSTotalMB = mb(cm.PeakBytes)
			b.PeakRSSMB = mb(max(cm.PeakBytes-rt.PeakBytes, 0))
			if device == deviceCUDA {
				b.GPUMB = gpu.add(cm)
			}
		}
	}
	r.Memory.GPUMethod, r.Memory.GPUNote = gpu.summary(device)
	if !self {
		r.Memory.Method = "child-rusage"
		r.Memory.Note = "a child did not report its own VmHWM; ru_maxrss is an upper bound"
	}
	return nil
}
