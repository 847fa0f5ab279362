package quant

import (
	"fmt"
	"math"
	"slices"
)

// The fast α search. AWQSearch quantizes every member with the base method
// at each of the grid's 21 α; with hqq as the base that is 21 hqq passes per
// Linear, most of a conversion's time. The estimate, as a function of α,
// has one broad valley (the scaling moves range from quiet columns to loud
// ones continuously) with small bumps from rounding, and round-to-nearest
// traces nearly the same valley as the error-minimising methods (its
// minimum a step or three lower) at a fraction of their cost.
// So AWQSearchFast
//
//  1. ranks the whole grid by a proxy: the estimate under a cheap
//     quantizer (round-to-nearest in the base's layout) on every RowStride-th
//     row of each member (rows are quantized independently, so a row
//     subsample is an unbiased sample of the sum);
//  2. evaluates the real estimate (base method, every row) at α = grid[0]
//     and at the Finalists best-ranked α;
//  3. climbs: while the best α evaluated so far has a grid neighbour not yet
//     evaluated, evaluates it; it stops at a local minimum of the real
//     estimate on the grid.
//
// The chosen α is the argmin of the real estimate over the α evaluated
// (ties to the earlier α, as AWQSearch), so it is never worse than
// grid[0] (α = 0: the base method), and wherever the evaluated set contains
// the full search's argmin the choice is identical. How far it can be from
// the full grid's optimum is measured, not proven: TestAWQFastGap (random
// heavy-tailed matrices) and convert's TestAWQFastGapFixtures (the trained
// fixtures' weights with their calibration statistics) hold it to
// AWQFastMaxGap.

// AWQFastMaxGap is the relative excess of the fast search's estimate over
// the full grid's optimum that the tests allow on any group (1%).
const AWQFastMaxGap = 0.01

// AWQFast configures AWQSearchFast.
type AWQFast struct {
	// Proxy is the cheap quantizer that ranks the grid.
	Proxy FakeQuant
	// RowStride: the proxy sees rows 0, RowStride, 2·RowStride, … of each
	// member (1: every row).
	RowStride int
	// Finalists is the number of best-ranked α evaluated with the real
	// method before the climb (at least 1).
	Finalists int
	// Radius: the climb stops when every α within Radius grid steps of the
	// best one has been evaluated (at least 1; 2 steps over the small
	// bumps rounding leaves in the curve).
	Radius int
	// MinRows: the row stride is lowered so that the proxy sees at least
	// this many rows of a member (a subsample of a short matrix is noisy).
	MinRows int
}

// DefaultAWQFast returns the configuration convert uses, with proxy as the
// ranking quantizer: every 4th row, 2 finalists.
func DefaultAWQFast(proxy FakeQuant) AWQFast {
	return AWQFast{Proxy: proxy, RowStride: 4, Finalists: 2, Radius: 2, MinRows: 256}
}

// AWQSearchFast is AWQSearch with the grid ranked by f.Proxy and the real
// method fq evaluated only where the ranking and the climb lead (see
// above). Err holds the real estimate where it was evaluated and NaN
// elsewhere (Err[0] always evaluated); ProxyErr the proxy's estimate for
// every α; Evaluated counts the real evaluations. Deterministic: it depends
// on nothing but the arguments.
func AWQSearchFast(ls []AWQLinear, k int, meanAbs, meanSq, grid []float64, fq FakeQuant, f AWQFast) (AWQResult, error) {
	if f.Proxy == nil || f.RowStride < 1 || f.Finalists < 1 || f.Radius < 1 {
		return AWQResult{}, fmt.Errorf("%w: fast AWQ search with row stride %d and %d finalists", ErrLength, f.RowStride, f.Finalists)
	}
	signal, maxN, err := awqCheck(ls, k, meanAbs, meanSq, grid)
	if err != nil {
		return AWQResult{}, err
	}
	res := AWQResult{Err: make([]float64, len(grid)), ProxyErr: make([]float64, len(grid)), Scales: make([]float32, k), Signal: signal}
	stride := f.RowStride
	for _, l := range ls {
		for stride > 1 && l.N/stride < f.MinRows {
			stride--
		}
	}
	sub, subN := awqRows(ls, k, stride)
	pe := newAWQEval(sub, k, subN, meanAbs, meanSq)
	for g, a := range grid {
		if res.ProxyErr[g], err = pe.eval(a, f.Proxy); err != nil {
			return AWQResult{}, err
		}
	}
	for g := range res.Err {
		res.Err[g] = math.NaN()
	}
	ev := newAWQEval(ls, k, maxN, meanAbs, meanSq)
	real := func(g int) error {
		if !math.IsNaN(res.Err[g]) {
			return nil
		}
		e, err := ev.eval(grid[g], fq)
		res.Err[g] = e
		res.Evaluated++
		return err
	}
	order := make([]int, len(grid))
	for g := range order {
		order[g] = g
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpFloat(res.ProxyErr[a], res.ProxyErr[b]) })
	for _, g := range append([]int{0}, order[:min(f.Finalists, len(order))]...) {
		if err := real(g); err != nil {
			return AWQResult{}, err
		}
	}
	best := 0
	for {
		best = 0
		for g, e := range res.Err {
			if !math.IsNaN(e) && e < res.Err[best] {
				best = g
			}
		}
		n := res.Evaluated
		for g := best - f.Radius; g <= best+f.Radius; g++ {
			if g >= 0 && g < len(grid) {
				if err := real(g); err != nil {
					return AWQResult{}, err
				}
			}
		}
		if res.Evaluated == n {
			break
		}
	}
	res.Alpha = grid[best]
	if err := AWQScales(res.Scales, meanAbs, res.Alpha); err != nil {
		return AWQResult{}, err
	}
	return res, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// awqRows returns every stride-th row of each member (row 0 first) and the
// largest row count among them.
func awqRows(ls []AWQLinear, k, stride int) ([]AWQLinear, int) {
	if stride == 1 {
		n := 0
		for _, l := range ls {
			n = max(n, l.N)
		}
		return ls, n
	}
	out := make([]AWQLinear, len(ls))
	maxN := 0
	for m, l := range ls {
		n := (l.N + stride - 1) / stride
		s := AWQLinear{W: make([]float32, 0, n*k), N: n}
		if l.RowDiv != nil {
			s.RowDiv = make([]float32, 0, n)
		}
		for i := 0; i < l.N; i += stride {
			s.W = append(s.W, l.W[i*k:(i+1)*k]...)
			if l.RowDiv != nil {
				s.RowDiv = append(s.RowDiv, l.RowDiv[i])
			}
		}
		out[m], maxN = s, max(maxN, n)
	}
	return out, maxN
}
