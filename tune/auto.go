package tune

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
)

// ErrTargetUnreachable is an auto search that ended without meeting its
// target (exit 5); the best artifact found was still written.
var ErrTargetUnreachable = fault.New(fault.Gate, "tune: target not reached")

// Target is what --precision auto must hold on the calibration inputs. At
// least one of MaxTop1Drop and MinCosine is set; every set one must hold.
type Target struct {
	// MaxTop1Drop in percentage points: FP32 labelled top-1 minus the
	// mixed graph's. Without labels it bounds the top-1 disagreement with
	// FP32 instead (100 − agreement %), which is never smaller.
	MaxTop1Drop *float64
	// MinCosine bounds the mean cosine of the outputs with FP32's.
	MinCosine *float64
	// MaxSizeRatio caps the weights' bytes over FP32's (0: no cap). A
	// promotion past it is not taken.
	MaxSizeRatio float64
}

func (t Target) String() string {
	var s []string
	if t.MaxTop1Drop != nil {
		s = append(s, fmt.Sprintf("top1_drop <= %g%%", *t.MaxTop1Drop))
	}
	if t.MinCosine != nil {
		s = append(s, fmt.Sprintf("cosine_mean >= %g", *t.MinCosine))
	}
	if t.MaxSizeRatio > 0 {
		s = append(s, fmt.Sprintf("size_ratio <= %g", t.MaxSizeRatio))
	}
	return strings.Join(s, ", ")
}

// drop is the figure MaxTop1Drop bounds, in percentage points.
func (e *evaluator) drop(m Metrics) float64 {
	if e.baseTop1 != nil && m.Top1 != nil {
		return 100 * (*e.baseTop1 - *m.Top1)
	}
	return 100 * (1 - m.Top1Agreement)
}

// holds reports whether m meets t (the size cap is checked apart).
func (t Target) holds(e *evaluator, m Metrics) bool {
	if m.NonFinite > 0 {
		return false
	}
	if t.MaxTop1Drop != nil && e.drop(m) > *t.MaxTop1Drop+1e-9 {
		return false
	}
	if t.MinCosine != nil && m.CosineMean < *t.MinCosine {
		return false
	}
	return true
}

// fits reports whether a size ratio is within the cap.
func (t Target) fits(size float64) bool { return t.MaxSizeRatio <= 0 || size <= t.MaxSizeRatio }

// shortfall orders failing states: how far m is from t, summed over the
// set bounds (0 when it holds).
func (t Target) shortfall(e *evaluator, m Metrics) float64 {
	if m.NonFinite > 0 {
		return math.Inf(1)
	}
	s := 0.0
	if t.MaxTop1Drop != nil {
		s += math.Max(0, e.drop(m)-*t.MaxTop1Drop) / 100
	}
	if t.MinCosine != nil {
		s += math.Max(0, *t.MinCosine-m.CosineMean)
	}
	return s
}

// AutoOptions configure Auto.
type AutoOptions struct {
	Src, Out string
	// Export writes an ONNX export (export --precision auto); otherwise a
	// convert artifact.
	Export bool
	// Candidates, e.g. int4, int8, fp16; sorted by size here. At most one
	// of int4 and nf4.
	Candidates []convert.Precision
	Target     Target
	// Budget bounds the search after the first state, every layer at its
	// smallest candidate, is measured (0: none); the best state is written
	// when it runs out.
	Budget  time.Duration
	Images  string
	Samples int
	Workers int
	Open    Opener
	// OpenPath opens the written export for the confirming run.
	OpenPath func(path string) (verify.Runner, error)
	// ConvertOptions and ExportOptions as for convert and export
	// (Precision and Overrides are set by Auto).
	ConvertOptions convert.Options
	ExportOptions  convert.ExportOptions
	// Log receives one line per step (nil: quiet).
	Log io.Writer
}

// AutoResult is what Auto wrote and measured.
type AutoResult struct {
	Out    string              `json:"output"`
	Record *convert.AutoRecord `json:"auto"`
	// Confirmed is the written artifact's own run on the calibration
	// inputs (same figures as the search's when the graph is the same).
	Confirmed Metrics `json:"confirmed"`
	// SizeBytes is the artifact's size on disk (model files or
	// safetensors).
	SizeBytes int64                   `json:"size_bytes"`
	Export    *convert.ExportManifest `json:"-"`
	Artifact  *convert.Manifest       `json:"-"`
}

// sizeOrder ranks candidates from smallest to largest stored size.
var sizeOrder = map[convert.Precision]int{convert.Int4: 0, convert.NF4: 0, convert.Int8: 1, convert.FP16: 2}

// ParseCandidates parses --candidates (comma-separated) and sorts them by
// size.
func ParseCandidates(s string) ([]convert.Precision, error) {
	var out []convert.Precision
	for _, f := range strings.Split(s, ",") {
		p := convert.Precision(strings.TrimSpace(f))
		if _, ok := sizeOrder[p]; !ok {
			return nil, fmt.Errorf("%w: candidate %q: want int4, nf4, int8 or fp16", ErrOption, p)
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("%w: candidate %q given twice", ErrOption, p)
		}
		out = append(out, p)
	}
	if slices.Contains(out, convert.Int4) && slices.Contains(out, convert.NF4) {
		return nil, fmt.Errorf("%w: candidates int4 and nf4 together (pick one 4-bit format)", ErrOption)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no candidates", ErrOption)
	}
	slices.SortStableFunc(out, func(a, b convert.Precision) int { return sizeOrder[a] - sizeOrder[b] })
	return out, nil
}

// state is one assignment: level[i] indexes Candidates for layer i.
type state struct {
	level  []int
	m      Metrics
	size   float64 // weight bytes over FP32's
	ok     bool
	steps  int
	absent bool // not measured
}

// Auto searches a mixed precision per layer that meets opt.Target on the
// calibration inputs, smallest first: every layer starts at the smallest
// candidate; layers are ranked by how much quantizing each alone at that
// candidate costs (KL divergence for a top-1 target, 1 − cosine for a
// cosine target), and promoted one step at a time in that order (every
// layer through the second candidate, then through the third, ...) until
// the target holds. The first state that holds is the answer; each
// promotion is measured by running the mixed graph, several in parallel.
//
// Whatever ends the search — the target met, every promotion spent, the
// size cap, the budget, an interrupt — the best state found is written to
// opt.Out as a normal artifact (the target met, else the closest), run once
// more from disk to confirm, and described in its manifest ("auto"). A
// target not met returns ErrTargetUnreachable (exit 5); an interrupt
// returns the context's error after writing.
func Auto(ctx context.Context, opt AutoOptions) (*AutoResult, error) {
	if opt.Target.MaxTop1Drop == nil && opt.Target.MinCosine == nil {
		return nil, fmt.Errorf("%w: --precision auto needs --max-top1-drop or --min-cosine", ErrOption)
	}
	var names []string
	for _, c := range opt.Candidates {
		names = append(names, string(c))
	}
	cands, err := ParseCandidates(strings.Join(names, ","))
	if err != nil {
		return nil, err
	}
	opt.Candidates = cands
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "auto: "+format+"\n", args...)
		}
	}
	start := time.Now()
	search := ctx
	if opt.Budget > 0 {
		var cancel context.CancelFunc
		search, cancel = context.WithTimeout(ctx, opt.Budget)
		defer cancel()
	}
	co := opt.ConvertOptions
	// The conversions, the inputs and the first state are measured
	// whatever the budget: without them there is nothing to write.
	nw, per := parallelism(opt.Workers, 0)
	p, err := prepare(ctx, opt.Src, opt.Candidates, opt.Images, opt.Samples, co, opt.ExportOptions, opt.Open, nw*per, 0)
	if err != nil {
		return nil, err
	}
	defer p.v.Close()
	if opt.Target.MaxTop1Drop != nil && p.ev.out.kind != verify.Logits {
		return nil, fmt.Errorf("%w: --max-top1-drop needs a model with logits; %s is compared on %s (use --min-cosine)", ErrOption, opt.Src, p.ev.out.name)
	}
	layers := p.v.Layers()
	base := cands[0]
	lb, err := layerBytes(p.v, cands, opt.Export)
	if err != nil {
		return nil, err
	}
	ladders := ladderOf(layers, cands, lb)
	var fp32Bytes float64
	for _, l := range layers {
		fp32Bytes += float64(lb[convert.FP32][l.Name])
	}
	assignOf := func(level []int) map[string]convert.Precision {
		a := make(map[string]convert.Precision, len(layers))
		for i, l := range layers {
			a[l.Name] = ladders[i][level[i]]
		}
		return a
	}
	measure := func(ctx context.Context, level []int) (Metrics, error) {
		model, err := p.v.Build(assignOf(level), base)
		if err != nil {
			return Metrics{}, err
		}
		return p.ev.eval(ctx, model)
	}
	sizeOf := func(level []int) float64 {
		var n float64
		for i, l := range layers {
			n += float64(lb[ladders[i][level[i]]][l.Name])
		}
		return n / fp32Bytes
	}
	evals := 0
	best := &state{level: make([]int, len(layers)), absent: true}
	consider := func(s *state) {
		switch {
		case best.absent:
		case s.ok && !best.ok:
		case s.ok == best.ok && s.ok && s.size < best.size:
		case !s.ok && !best.ok && opt.Target.shortfall(p.ev, s.m) < opt.Target.shortfall(p.ev, best.m):
		default:
			return
		}
		*best = *s
		best.level = slices.Clone(s.level)
	}
	stop := "unreachable"
	err = func() error {
		// All at the smallest candidate.
		first := &state{level: make([]int, len(layers))}
		first.size = sizeOf(first.level)
		if first.m, err = measure(ctx, first.level); err != nil {
			return err
		}
		// The FP32 run and the first state had the threads to themselves;
		// from here on nw variants share them.
		p.ev.sess.Threads = per
		evals++
		first.ok = opt.Target.holds(p.ev, first.m) && opt.Target.fits(first.size)
		consider(first)
		logf("all %d layers at their smallest candidate: drop %.2f pt, cosine %.6f, size %.3f of FP32", len(layers), p.ev.drop(first.m), first.m.CosineMean, first.size)
		if first.ok {
			stop = "target reached"
			return nil
		}
		if slices.IndexFunc(ladders, func(l []convert.Precision) bool { return len(l) > 1 }) < 0 {
			return nil // nothing to promote
		}
		// Rank by each layer alone at the smallest candidate.
		scores := make([]float64, len(layers))
		rs, err := newReuse(search, p.v, p.ev)
		if err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(search)
		g.SetLimit(nw)
		for i, l := range layers {
			g.Go(func() error {
				assign := map[string]convert.Precision{l.Name: ladders[i][0]}
				var m Metrics
				if a := rs.byLayer[l.Name]; a != nil {
					model, err := p.v.BuildCut(assign, convert.FP32, a.name, a.dims)
					if err != nil {
						return err
					}
					if m, err = p.ev.evalCut(gctx, model, a); err != nil {
						return err
					}
				} else {
					model, err := p.v.Build(assign, convert.FP32)
					if err != nil {
						return err
					}
					if m, err = p.ev.eval(gctx, model); err != nil {
						return err
					}
				}
				if opt.Target.MaxTop1Drop != nil {
					scores[i] = m.KLMean
				} else {
					scores[i] = 1 - m.CosineMean
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		evals += len(layers)
		order := ranked(len(layers), func(i int) float64 { return scores[i] })
		logf("ranked %d layers; most sensitive: %s", len(layers), layers[order[0]].Name)
		// The promotion sequence: every layer one step up its ladder in
		// rank order, then a second step, ...; seq[k] holds the first k+1
		// promotions, layer[k] the one it adds.
		var seq [][]int
		var promoted []int
		cur := slices.Clone(first.level)
		for lv := 1; lv < len(cands); lv++ {
			for _, i := range order {
				if len(ladders[i]) > lv {
					cur[i] = lv
					seq = append(seq, slices.Clone(cur))
					promoted = append(promoted, i)
				}
			}
		}
		// Measure the sequence in windows of nw states at once; the first
		// state in sequence order that holds ends the search.
		for k := 0; k < len(seq); k += nw {
			win := seq[k:min(k+nw, len(seq))]
			states := make([]*state, len(win))
			capped := false
			for j, lv := range win {
				states[j] = &state{level: lv, size: sizeOf(lv), steps: k + j + 1}
				if opt.Target.MaxSizeRatio > 0 && states[j].size > opt.Target.MaxSizeRatio {
					states[j].absent, capped = true, true
				}
			}
			g, gctx := errgroup.WithContext(search)
			g.SetLimit(nw)
			for _, s := range states {
				if s.absent {
					continue
				}
				g.Go(func() error {
					m, err := measure(gctx, s.level)
					s.m = m
					return err
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
			for _, s := range states {
				if s.absent {
					break
				}
				evals++
				s.ok = opt.Target.holds(p.ev, s.m)
				consider(s)
				i := promoted[s.steps-1]
				lv := s.level[i]
				logf("step %d/%d: %s %s→%s: drop %.2f pt, cosine %.6f, size %.3f", s.steps, len(seq), layers[i].Name,
					ladders[i][lv-1], ladders[i][lv], p.ev.drop(s.m), s.m.CosineMean, s.size)
				if s.ok {
					stop = "target reached"
					return nil
				}
			}
			if capped {
				logf("next promotion would pass --max-size-ratio %g", opt.Target.MaxSizeRatio)
				return nil
			}
		}
		return nil
	}()
	interrupted := ctx.Err() != nil
	switch {
	case err == nil:
	case interrupted && !best.absent:
		stop = "interrupted"
	case search.Err() != nil && !best.absent:
		stop = "budget"
	default:
		return nil, err
	}
	if best.absent {
		return nil, err
	}
	rec := &convert.AutoRecord{Target: opt.Target.String(), Reached: best.ok, Stop: stop, Calibration: p.in.Source,
		Samples: p.in.N, Evaluations: evals, Seconds: time.Since(start).Seconds(), Mix: map[string]int{}}
	for _, c := range cands {
		rec.Candidates = append(rec.Candidates, string(c))
	}
	rec.Measured = autoMetrics(p.ev, best.m, best.size)
	over := map[string]convert.Precision{}
	for i, l := range layers {
		c := ladders[i][best.level[i]]
		rec.Layers = append(rec.Layers, convert.AutoLayer{Name: l.Name, Precision: c, Scheme: l.Schemes[c]})
		rec.Mix[string(c)]++
		if c != base {
			over[l.Name] = c
		}
	}
	logf("%s after %d evaluations in %.1f s: %v; writing %s", stop, evals, rec.Seconds, rec.Mix, opt.Out)
	// Write even when interrupted or out of budget: the point of the best
	// state is that it survives.
	res, werr := writeAuto(context.WithoutCancel(ctx), p, opt, base, over, rec)
	if werr != nil {
		return nil, werr
	}
	switch {
	case interrupted:
		return res, fmt.Errorf("search interrupted; wrote the best state found to %s: %w", opt.Out, ctx.Err())
	case !rec.Reached:
		return res, fmt.Errorf("%w: %s (%s); wrote the closest state found to %s", ErrTargetUnreachable, rec.Target, stop, opt.Out)
	}
	return res, nil
}

func autoMetrics(e *evaluator, m Metrics, size float64) convert.AutoMetrics {
	a := convert.AutoMetrics{Top1Agreement: m.Top1Agreement, CosineMean: m.CosineMean, CosineMin: m.CosineMin, KLMean: m.KLMean,
		SizeRatio: size}
	if e.baseTop1 != nil && m.Top1 != nil {
		b, t := *e.baseTop1, *m.Top1
		d := 100 * (b - t)
		a.BaselineTop1, a.Top1, a.Top1Drop = &b, &t, &d
	}
	return a
}

// layerBytes is each layer's size at each candidate and FP32: as the export
// lays its initializers out (alignment included) or as the artifact stores
// it.
func layerBytes(v *convert.Variants, cands []convert.Precision, export bool) (map[convert.Precision]map[string]int64, error) {
	out := map[convert.Precision]map[string]int64{}
	for _, p := range append([]convert.Precision{convert.FP32}, cands...) {
		if export {
			b, err := v.FileBytes(p)
			if err != nil {
				return nil, err
			}
			out[p] = b
			continue
		}
		out[p] = map[string]int64{}
		for _, l := range v.Layers() {
			out[p][l.Name] = l.Bytes[p]
		}
	}
	return out, nil
}

// ladderOf gives each layer the candidates it may take, smallest first,
// without the dominated ones: a candidate is dropped when a more precise
// one takes no more bytes for that layer (a small layer's int4 codes can
// occupy as many aligned bytes as its int8 weight), so promotions always buy
// accuracy with size and never the reverse.
func ladderOf(layers []convert.Layer, cands []convert.Precision, lb map[convert.Precision]map[string]int64) [][]convert.Precision {
	out := make([][]convert.Precision, len(layers))
	for i, l := range layers {
		var lad []convert.Precision
		least := int64(math.MaxInt64)
		for c := len(cands) - 1; c >= 0; c-- {
			if b := lb[cands[c]][l.Name]; b < least {
				lad = append([]convert.Precision{cands[c]}, lad...)
				least = b
			}
		}
		out[i] = lad
	}
	return out
}
