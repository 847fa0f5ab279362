package convert

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/quantize"
)

// --method awq: activation-aware per-input-channel scaling (quant/awq.go
// has the arithmetic, awq_graph.go the folding rules). Convert finds each
// 4-bit Linear's group in the FP32 graph, calibrates the groups' inputs,
// chooses α per group, and then, tensor by tensor as every conversion
// runs (processItem → awqApply), writes W·diag(s) quantized with the base
// method and 1/s folded into the LayerNorm or value projection. The
// artifact keeps plain layouts (MatMulNBits codes, bitsandbytes NF4), so
// ORT, transformers and bitsandbytes load it unchanged.

// Calibration is where --method awq gets its activation statistics.
type Calibration struct {
	// Images is an ImageFolder (or flat folder) of calibration images,
	// preprocessed as verify --images does.
	Images string
	// Samples caps the number of images; 0 means quantize.DefaultSamples.
	Samples int
	// Open runs the FP32 graph (the command passes verify/ort's OpenBytes).
	Open quantize.OpenFunc
}

// Where a group's 1/s went (AWQGroup.Fold).
const (
	awqFoldNorm  = "layernorm" // the preceding LayerNorm's weight and bias divided by s
	awqFoldValue = "value"     // the value projection's output rows and bias divided by s
	awqFoldMul   = "mul"       // an explicit per-channel Mul before the quantized MatMul (export)
	awqFoldNone  = "none"      // nothing absorbs it: left unscaled, base method (convert)
)

// AWQEstimate describes the error estimate the α search minimises.
const AWQEstimate = "diagonal: sum_ij E[x_j^2] (W_ij - What_ij)^2 over calibration inputs"

// AWQScheme is the manifest's record of an awq conversion (scheme.awq).
type AWQScheme struct {
	// Base is the block method that quantizes W·diag(s).
	Base      quant.Method `json:"base"`
	AlphaGrid []float64    `json:"alpha_grid"`
	// Search says how the grid was searched (awqSearchFull or
	// awqSearchFast's description).
	Search      string              `json:"search"`
	Estimate    string              `json:"estimate"`
	Calibration quantize.SourceInfo `json:"calibration"`
	// WeightedSQNRdB is the activation-weighted SQNR (Σ E[x_j²]·W_ij² over
	// Σ E[x_j²]·ΔW_ij², every 4-bit Linear) of the artifact;
	// BaseWeightedSQNRdB the same for the base method alone (α = 0).
	WeightedSQNRdB     float64    `json:"weighted_sqnr_db"`
	BaseWeightedSQNRdB float64    `json:"base_weighted_sqnr_db"`
	Groups             []AWQGroup `json:"groups"`
}

// AWQGroup is one set of Linears sharing an input and its scales.
type AWQGroup struct {
	Linears []string `json:"linears"`
	// Input is the calibrated activation (a value of the FP32 graph).
	Input string `json:"input"`
	// Fold: layernorm, value, mul (export's explicit Mul) or none (left
	// unscaled); Into names the LayerNorm prefix or the value weight.
	Fold               string  `json:"fold"`
	Into               string  `json:"into,omitempty"`
	Alpha              float64 `json:"alpha"`
	WeightedSQNRdB     float64 `json:"weighted_sqnr_db"`
	BaseWeightedSQNRdB float64 `json:"base_weighted_sqnr_db"`
	// Evaluated is the number of α quantized with the base method (the
	// whole grid for the full search).
	Evaluated int `json:"alpha_evaluated"`
}

// AWQTensor is a tensor's awq record (tensors[].awq): a scaled Linear
// (Alpha set), or a tensor that absorbed scales (Absorbs names the group's
// first Linear).
type AWQTensor struct {
	Method  quant.Method `json:"method"`
	Base    quant.Method `json:"base,omitempty"`
	Alpha   *float64     `json:"alpha,omitempty"`
	Fold    string       `json:"fold,omitempty"`
	Into    string       `json:"into,omitempty"`
	Absorbs []string     `json:"absorbs,omitempty"`
}

// awqPlan is what processItem applies, by tensor name.
type awqPlan struct {
	col    map[string][]float32 // Linear weight → s (columns multiplied)
	rowDiv map[string][]float32 // value weight → s of the output dense (rows divided)
	div    map[string][]float32 // 1-D tensor (LayerNorm weight/bias, value bias) → divided by s
	mul    map[string][]float32 // Linear weight → 1/s for export's explicit Mul
	scheme *AWQScheme
}

// awqOutput hands the explicit Mul scales of export's own conversion back
// to Export.
type awqOutput struct{ mul map[string][]float32 }

// awqGrid is the α grid (a variable so tests can pin α).
var awqGrid = quant.AWQGrid

// awqFullSearch makes every group search the whole grid with the base
// method (quant.AWQSearch) instead of the fast search; the tests that
// measure the fast search's gap set it.
var awqFullSearch = false

// How the grid is searched (AWQScheme.Search).
const (
	awqSearchFull = "full: base method at every alpha"
	awqSearchFast = "fast: grid ranked by rtn on every 4th row (at least 256 rows), base method at alpha 0, the 2 best-ranked, then every alpha within 2 steps of the best until none is left (a local minimum)"
)

// planAWQ calibrates and searches; nil when the method is not awq.
func planAWQ(ctx context.Context, s *Source, items []*item, opt *Options) (*awqPlan, error) {
	if opt.method() != quant.MethodAWQ {
		return nil, nil
	}
	if s.Dir == "" || s.Arch == nil || s.Arch.graph() == nil {
		return nil, fmt.Errorf("%s: %w: --method awq calibrates the model's FP32 graph: it needs a model directory of an architecture export supports (%v)",
			s.Path, ErrUnsupported, Exportable())
	}
	es, err := openExportSource(s.Dir)
	if err != nil {
		return nil, err
	}
	defer es.Close()
	h, w, _, err := es.imageSize(0)
	if err != nil {
		return nil, err
	}
	gopt := graphOptions{Precision: FP32, Opset: DefaultOpset, Int4Accuracy: DefaultInt4Accuracy, Height: h, Width: w}
	m, err := buildModel(es, es.w, &gopt)
	if err != nil {
		return nil, err
	}
	byName := map[string]*item{}
	for _, it := range items {
		byName[it.src.Name] = it
	}
	specs, err := awqGroups(m, byName, opt.awqExplicitMul)
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: %w: --method awq found no 4-bit Linear in the graph", s.Path, ErrUnsupported)
	}
	stats, info, err := awqCalibrate(ctx, m, es.dir, specs, opt.Calib)
	m = nil // the FP32 graph's weights can go before the search
	if err != nil {
		return nil, err
	}
	p := &awqPlan{col: map[string][]float32{}, rowDiv: map[string][]float32{}, div: map[string][]float32{}, mul: map[string][]float32{},
		scheme: &AWQScheme{Base: opt.quantMethod(), AlphaGrid: awqGrid(), Search: opt.awqSearchName(), Estimate: AWQEstimate, Calibration: info}}
	results := make([]awqGroupResult, len(specs))
	// Output denses (folded into value rows) and unfoldable layers first:
	// the value projection's row divisors must be known when its own group
	// (with query and key) is searched.
	for _, phase := range []func(*awqGroupSpec) bool{
		func(g *awqGroupSpec) bool { return g.fold != awqFoldNorm },
		func(g *awqGroupSpec) bool { return g.fold == awqFoldNorm },
	} {
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(max(opt.withDefaults().Threads, 1))
		for i, g := range specs {
			if !phase(g) {
				continue
			}
			eg.Go(func() error {
				if err := ectx.Err(); err != nil {
					return err
				}
				r, err := searchGroup(g, byName, stats[g.input], p.rowDiv, opt)
				if err != nil {
					return fmt.Errorf("awq group %s: %w", g.linears[0], err)
				}
				results[i] = r
				return nil
			})
		}
		if err := eg.Wait(); err != nil {
			return nil, err
		}
		for i, g := range specs {
			if phase(g) && g.fold == awqFoldValue {
				p.rowDiv[g.into] = results[i].scales
			}
		}
	}
	var sig, errSum, baseErr float64
	for i, g := range specs {
		r := results[i]
		sig, errSum, baseErr = sig+r.signal, errSum+r.err, baseErr+r.baseErr
		p.record(g, r, byName, opt.quantMethod())
	}
	p.scheme.WeightedSQNRdB = awqDB(sig, errSum)
	p.scheme.BaseWeightedSQNRdB = awqDB(sig, baseErr)
	if opt.awqOut != nil {
		opt.awqOut.mul = p.mul
	}
	return p, nil
}

// awqGroupResult is one group's search: the scales chosen (nil: unscaled)
// and the estimated errors, at the choice and for the base method alone.
type awqGroupResult struct {
	alpha                float64
	scales               []float32
	signal, err, baseErr float64
	evaluated            int
}

// searchGroup runs the α search for a group (α = 0 only for a group
// nothing absorbs).
func searchGroup(g *awqGroupSpec, items map[string]*item, st *quantize.ChannelStats, rowDiv map[string][]float32, opt *Options) (awqGroupResult, error) {
	var r awqGroupResult
	if st == nil || st.Rows == 0 {
		return r, fmt.Errorf("%w: calibration produced no values for %q", quantize.ErrCalibData, g.input)
	}
	meanAbs, meanSq := st.Means()
	k := len(meanAbs)
	var ls, plain []quant.AWQLinear
	for _, name := range g.linears {
		it := items[name]
		if !is4bit(it) {
			continue
		}
		if len(it.src.Shape) != 2 || int(it.src.Shape[1]) != k {
			return r, fmt.Errorf("%w: %q has shape %v for an input of %d channels", ErrTensorShape, name, it.src.Shape, k)
		}
		wv, err := readFloat32(it.src)
		if err != nil {
			return r, err
		}
		l := quant.AWQLinear{W: wv, N: int(it.src.Shape[0]), RowDiv: rowDiv[name]}
		ls = append(ls, l)
		l.RowDiv = nil
		plain = append(plain, l)
	}
	fq := opt.awqFakeQuant(k)
	grid := awqGrid()
	if g.fold == awqFoldNone {
		grid = []float64{0}
	}
	var res quant.AWQResult
	var err error
	if opt.awqSearchName() == awqSearchFull || len(grid) == 1 {
		res, err = quant.AWQSearch(ls, k, meanAbs, meanSq, grid, fq)
	} else {
		res, err = quant.AWQSearchFast(ls, k, meanAbs, meanSq, grid, fq, quant.DefaultAWQFast(opt.awqFakeQuantWith(quant.MethodRTN, k)))
	}
	if err != nil {
		return r, err
	}
	best := slices.Index(grid, res.Alpha)
	r.evaluated = res.Evaluated
	if res.ProxyErr == nil {
		r.evaluated = len(grid)
	}
	r.alpha, r.signal, r.err, r.baseErr = res.Alpha, res.Signal, res.Err[best], res.Err[0]
	if g.fold != awqFoldNone {
		r.scales = res.Scales
	}
	if slices.ContainsFunc(ls, func(l quant.AWQLinear) bool { return l.RowDiv != nil }) {
		// The base method alone never sees the value rows divided.
		b, err := quant.AWQSearch(plain, k, meanAbs, meanSq, []float64{0}, fq)
		if err != nil {
			return r, err
		}
		r.baseErr = b.Err[0]
	}
	return r, nil
}

// awqFakeQuant quantizes and dequantizes weights of k inputs with the base
// method as the conversion will: int4 at the block the conversion gives
// such a tensor (int4Block: the per-tensor rule unless --block-size).
func (o *Options) awqFakeQuant(k int) quant.FakeQuant { return o.awqFakeQuantWith(o.quantMethod(), k) }

// awqFakeQuantWith is awqFakeQuant with method m in the base's layout (the
// fast search's proxy is rtn).
func (o *Options) awqFakeQuantWith(m quant.Method, k int) quant.FakeQuant {
	if o.Precision == NF4 {
		return quant.NF4FakeQuant(m, o.blockSize())
	}
	return quant.Int4FakeQuant(m, quant.Int4Params{BlockSize: int(o.int4Block(int64(k))), Symmetric: !o.Asymmetric})
}

// awqSearchName is how the grid is searched: fully when the tests ask or
// when the base is rtn itself (the proxy would be the base: nothing to
// save), fast otherwise.
func (o *Options) awqSearchName() string {
	if awqFullSearch || o.quantMethod() == quant.MethodRTN {
		return awqSearchFull
	}
	return awqSearchFast
}

// record fills the plan's tables and the manifest records for one group.
func (p *awqPlan) record(g *awqGroupSpec, r awqGroupResult, items map[string]*item, base quant.Method) {
	alpha := r.alpha
	p.scheme.Groups = append(p.scheme.Groups, AWQGroup{Linears: g.linears, Input: g.input, Fold: g.fold, Into: g.into, Alpha: alpha,
		WeightedSQNRdB: awqDB(r.signal, r.err), BaseWeightedSQNRdB: awqDB(r.signal, r.baseErr), Evaluated: r.evaluated})
	for _, name := range g.linears {
		it := items[name]
		it.rec.AWQ = &AWQTensor{Method: quant.MethodAWQ, Base: base, Alpha: &alpha, Fold: g.fold, Into: g.into}
		if r.scales != nil {
			p.col[name] = r.scales
		}
	}
	if r.scales == nil {
		return
	}
	absorb := func(name string) {
		it := items[name]
		if it == nil {
			return
		}
		if it.rec.AWQ == nil {
			it.rec.AWQ = &AWQTensor{Method: quant.MethodAWQ}
		}
		it.rec.AWQ.Absorbs = append(it.rec.AWQ.Absorbs, g.linears[0])
	}
	switch g.fold {
	case awqFoldNorm:
		for _, t := range []string{g.into + ".weight", g.into + ".bias"} {
			p.div[t] = r.scales
			absorb(t)
		}
	case awqFoldValue:
		absorb(g.into)
		bias := prefixOf(g.into) + ".bias"
		if items[bias] != nil {
			p.div[bias] = r.scales
			absorb(bias)
		}
	case awqFoldMul:
		inv := make([]float32, len(r.scales))
		for j, s := range r.scales {
			inv[j] = 1 / s
		}
		for _, name := range g.linears {
			p.mul[name] = inv
		}
	}
}

// awqApply scales a tensor in place as the plan says and returns the
// function that maps its reconstruction back to the original space (for
// the error statistics) and returns the original values; nil when the
// tensor is not touched.
func (o *Options) awqApply(it *item, x []float32) (func(deq []float32) []float32, error) {
	p := o.awq
	if p == nil {
		return nil, nil
	}
	name := it.src.Name
	s, rd, d := p.col[name], p.rowDiv[name], p.div[name]
	if s == nil && rd == nil && d == nil {
		return nil, nil
	}
	orig := slices.Clone(x)
	if d != nil {
		if len(x) != len(d) {
			return nil, fmt.Errorf("%w: %d values, %d awq scales", ErrTensorShape, len(x), len(d))
		}
		for j := range x {
			x[j] /= d[j]
		}
		return func(deq []float32) []float32 {
			for j := range deq {
				deq[j] = float32(float64(deq[j]) * float64(d[j]))
			}
			return orig
		}, nil
	}
	if len(it.src.Shape) != 2 {
		return nil, fmt.Errorf("%w: awq scales a 2-D weight, not %v", ErrTensorShape, it.src.Shape)
	}
	n, k := int(it.src.Shape[0]), int(it.src.Shape[1])
	if s == nil {
		s = ones(k)
	}
	if err := quant.AWQScaleWeight(x, orig, n, k, s, rd); err != nil {
		return nil, err
	}
	return func(deq []float32) []float32 {
		quant.AWQUnscale(deq, n, k, s, rd)
		return orig
	}, nil
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// awqDB is quant.WeightedSQNR for the manifest: JSON has no infinity, so an
// exact reconstruction is recorded as awqExactDB.
func awqDB(signal, err float64) float64 {
	if err == 0 {
		return awqExactDB
	}
	return quant.WeightedSQNR(signal, err)
}

// awqExactDB stands for an exact reconstruction (infinite SQNR).
const awqExactDB = 999
