package quant

import (
	"fmt"
	"math"
)

// Activation-aware weight quantization (AWQ; Lin et al., "AWQ:
// Activation-aware Weight Quantization for LLM Compression and
// Acceleration", MLSys 2024), the arithmetic. For a Linear y = W·x whose
// input channel j has mean magnitude m_j = E|x_j| over calibration data,
// AWQ quantizes W·diag(s) instead of W, with s_j = m_j^α, and feeds the
// layer x/s (the 1/s is folded into whatever produces x, or applied by an
// explicit multiply): the product is unchanged, but the columns that meet
// large activations get a larger share of each block's range. α is chosen
// per layer (or per group of Linears that share one input) from a grid by
// the estimated output error.
//
// Output error estimate (a diagonal approximation). With ΔW = W - Ŵ the
// reconstruction error in the original space (Ŵ_ij = Q(W·diag(s))_ij / s_j),
// the output error of one row is e_i = Σ_j ΔW_ij·x_j and
//
//	E[e_i²] = Σ_j Σ_k ΔW_ij·ΔW_ik·E[x_j·x_k].
//
// The estimate keeps the diagonal, Σ_j ΔW_ij²·E[x_j²]: rounding errors of
// different columns are nearly independent and of either sign, so the cross
// terms summed over a row mostly cancel, while the diagonal terms are all
// positive. It needs only two numbers per channel (E|x_j| and E[x_j²],
// streamed), so memory does not grow with the number of samples. E[x_j²] is
// the uncentred second moment: the error acts on x itself, mean included.
// (AWQ's reference implementation measures the output error on a batch of
// real activations, cross terms included; the diagonal form is what lets
// calibration stream.)

// AWQGridSteps is the number of α steps: the grid is 0, 1/AWQGridSteps, …, 1
// (AWQ's reference implementation uses 20).
const AWQGridSteps = 20

// AWQGrid returns the α grid 0, 0.05, …, 1 (AWQGridSteps+1 values, each
// i/AWQGridSteps computed exactly once so every caller sees the same bits).
func AWQGrid() []float64 {
	g := make([]float64, AWQGridSteps+1)
	for i := range g {
		g[i] = float64(i) / AWQGridSteps
	}
	return g
}

// awqFloor bounds m_j from below relative to the largest: a channel that
// calibration never (or hardly) saw would otherwise get s_j → 0 and its
// weights scaled to nothing.
const awqFloor = 1e-4

// AWQScales fills s with the per-input-channel scales for α: s_j =
// max(m_j, awqFloor·max m)^α, divided by √(max s · min s) so that the
// scales straddle 1 (as AWQ's reference implementation normalises them) and
// folding them leaves magnitudes where they were. α = 0, or m all zero,
// gives s = 1 exactly.
func AWQScales(s []float32, meanAbs []float64, alpha float64) error {
	if len(s) != len(meanAbs) {
		return fmt.Errorf("%w: %d scales for %d channels", ErrLength, len(s), len(meanAbs))
	}
	var mx float64
	for _, m := range meanAbs {
		if !(m >= 0 && m <= math.MaxFloat64) {
			return fmt.Errorf("%w: channel statistic %v", ErrNonFinite, m)
		}
		mx = max(mx, m)
	}
	if alpha == 0 || mx == 0 {
		for j := range s {
			s[j] = 1
		}
		return nil
	}
	floor := mx * awqFloor
	lo, hi := math.Inf(1), 0.0
	v := make([]float64, len(meanAbs))
	for j, m := range meanAbs {
		v[j] = math.Pow(max(m, floor), alpha)
		lo, hi = min(lo, v[j]), max(hi, v[j])
	}
	norm := math.Sqrt(lo * hi)
	for j := range v {
		s[j] = float32(v[j] / norm)
	}
	return nil
}

// AWQScaleWeight writes dst = diag(1/rowDiv)·W·diag(s) for W [n, k]
// row-major: dst_ij = float32(float32(w_ij·s_j) / rowDiv_i), rowDiv nil
// meaning 1. rowDiv folds the next layer's scales into this layer's output
// rows (the value projection before attention's output dense). Search and
// conversion both go through this function, so the weights the search
// scored are the weights written.
func AWQScaleWeight(dst, w []float32, n, k int, s, rowDiv []float32) error {
	if len(w) != n*k || len(dst) != n*k || len(s) != k || (rowDiv != nil && len(rowDiv) != n) {
		return fmt.Errorf("%w: AWQ weight [%d, %d]: %d values, %d out, %d scales, %d row divisors", ErrLength, n, k, len(w), len(dst), len(s), len(rowDiv))
	}
	for i := 0; i < n; i++ {
		row, out := w[i*k:(i+1)*k], dst[i*k:(i+1)*k]
		for j, x := range row {
			out[j] = float32(x * s[j])
		}
		if rowDiv != nil {
			d := rowDiv[i]
			for j := range out {
				out[j] /= d
			}
		}
	}
	return nil
}

// AWQLinear is one Linear of a group that shares an input (and so one
// vector of scales): W [N, K] row-major, and RowDiv as for AWQScaleWeight.
type AWQLinear struct {
	W      []float32
	N      int
	RowDiv []float32
}

// FakeQuant quantizes src [n, k] with a base method and writes the values
// a dequantizer reads back into dst.
type FakeQuant func(dst, src []float32, n, k int) error

// AWQResult is a group's search.
type AWQResult struct {
	// Alpha is the chosen exponent, Scales the s it gives (len K).
	Alpha  float64
	Scales []float32
	// Err is the estimated output error Σ_i Σ_j E[x_j²]·ΔW_ij² (summed over
	// the group) for each grid value, in the grid's order.
	Err []float64
	// Signal is Σ_i Σ_j E[x_j²]·W_ij² over the group: Signal/Err is the
	// activation-weighted SQNR.
	Signal float64
	// ProxyErr and Evaluated are AWQSearchFast's: the proxy's estimate per
	// α, and the number of α evaluated with the real method (Err is NaN at
	// the others).
	ProxyErr  []float64
	Evaluated int
}

// WeightedSQNR is 10·log10(signal/err) in dB (+Inf for err 0).
func WeightedSQNR(signal, err float64) float64 {
	return 10 * math.Log10(signal/err)
}

// AWQSearch chooses α for a group of Linears sharing one input of width k
// with per-channel statistics meanAbs (E|x_j|) and meanSq (E[x_j²]): for
// each α of grid, every member is scaled (AWQScaleWeight), quantized with
// fq, mapped back to the original space and its error weighted by meanSq.
// The lowest estimate wins; ties go to the earlier α, so with 0 first the
// base method is kept unless scaling strictly helps. The result depends on
// nothing but the arguments.
func AWQSearch(ls []AWQLinear, k int, meanAbs, meanSq, grid []float64, fq FakeQuant) (AWQResult, error) {
	signal, maxN, err := awqCheck(ls, k, meanAbs, meanSq, grid)
	if err != nil {
		return AWQResult{}, err
	}
	res := AWQResult{Err: make([]float64, len(grid)), Scales: make([]float32, k), Signal: signal}
	ev := newAWQEval(ls, k, maxN, meanAbs, meanSq)
	best := -1
	for g, a := range grid {
		e, err := ev.eval(a, fq)
		if err != nil {
			return AWQResult{}, err
		}
		res.Err[g] = e
		if best < 0 || e < res.Err[best] {
			best = g
			copy(res.Scales, ev.s)
		}
	}
	res.Alpha = grid[best]
	return res, nil
}

// awqCheck validates a search's arguments and returns the group's signal
// Σ_i Σ_j E[x_j²]·W_ij² and its largest member's row count.
func awqCheck(ls []AWQLinear, k int, meanAbs, meanSq, grid []float64) (signal float64, maxN int, err error) {
	if len(meanAbs) != k || len(meanSq) != k || len(grid) == 0 {
		return 0, 0, fmt.Errorf("%w: AWQ search over %d channels with %d/%d statistics and %d grid values", ErrLength, k, len(meanAbs), len(meanSq), len(grid))
	}
	for _, l := range ls {
		if l.N < 0 || len(l.W) != l.N*k || (l.RowDiv != nil && len(l.RowDiv) != l.N) {
			return 0, 0, fmt.Errorf("%w: AWQ member [%d, %d] with %d values", ErrLength, l.N, k, len(l.W))
		}
		maxN = max(maxN, l.N)
		for i := 0; i < l.N; i++ {
			for j, w := range l.W[i*k : (i+1)*k] {
				signal += meanSq[j] * float64(w) * float64(w)
			}
		}
	}
	return signal, maxN, nil
}

// awqEval evaluates the estimate for one α at a time, with buffers reused
// across α (the search's inner loop).
type awqEval struct {
	ls              []AWQLinear
	k               int
	meanAbs, meanSq []float64
	s, scaled, deq  []float32
}

func newAWQEval(ls []AWQLinear, k, maxN int, meanAbs, meanSq []float64) *awqEval {
	return &awqEval{ls: ls, k: k, meanAbs: meanAbs, meanSq: meanSq,
		s: make([]float32, k), scaled: make([]float32, maxN*k), deq: make([]float32, maxN*k)}
}

// eval sets e.s to α's scales and returns the group's estimate under fq.
func (e *awqEval) eval(a float64, fq FakeQuant) (float64, error) {
	k := e.k
	if err := AWQScales(e.s, e.meanAbs, a); err != nil {
		return 0, err
	}
	var sum float64
	for _, l := range e.ls {
		sc, dq := e.scaled[:l.N*k], e.deq[:l.N*k]
		if err := AWQScaleWeight(sc, l.W, l.N, k, e.s, l.RowDiv); err != nil {
			return 0, err
		}
		if err := fq(dq, sc, l.N, k); err != nil {
			return 0, err
		}
		sum += awqErr(l, dq, k, e.s, e.meanSq)
	}
	return sum, nil
}

// awqErr is Σ_ij E[x_j²]·(w_ij - ŵ_ij)² with ŵ_ij = deq_ij·rowDiv_i/s_j,
// the reconstruction in the original space, in float64.
func awqErr(l AWQLinear, deq []float32, k int, s []float32, meanSq []float64) float64 {
	var e float64
	for i := 0; i < l.N; i++ {
		d := 1.0
		if l.RowDiv != nil {
			d = float64(l.RowDiv[i])
		}
		row, q := l.W[i*k:(i+1)*k], deq[i*k:(i+1)*k]
		for j, w := range row {
			r := float64(w) - float64(q[j])*d/float64(s[j])
			e += meanSq[j] * r * r
		}
	}
	return e
}

// AWQUnscale maps a reconstruction of AWQScaleWeight's output back to the
// original space in place: deq_ij = deq_ij·rowDiv_i/s_j (float64 math,
// rounded once), so error statistics compare like with like.
func AWQUnscale(deq []float32, n, k int, s, rowDiv []float32) {
	for i := 0; i < n; i++ {
		d := 1.0
		if rowDiv != nil {
			d = float64(rowDiv[i])
		}
		for j := range deq[i*k : (i+1)*k] {
			deq[i*k+j] = float32(float64(deq[i*k+j]) * d / float64(s[j]))
		}
	}
}

// Int4FakeQuant is a FakeQuant for int4 with method m (rtn, mse or hqq).
// It keeps its code buffers between calls (the search calls it once per α
// on same-sized matrices; every byte is rewritten each call), so one
// FakeQuant must not be called from two goroutines at once: make one per
// goroutine.
func Int4FakeQuant(m Method, p Int4Params) FakeQuant {
	var packed, zeros []byte
	var scales []float32
	return func(dst, src []float32, n, k int) error {
		np, ns, nz := Int4Sizes(n, k, p)
		packed, scales, zeros = grow(packed, np), grow(scales, ns), grow(zeros, nz)
		if err := QuantizeInt4With(m, packed, scales, zeros, src, n, k, p); err != nil {
			return err
		}
		return DequantizeInt4(dst, packed, scales, zeros, n, k, p)
	}
}

// NF4FakeQuant is a FakeQuant for nf4 blocks of blockSize with method m (rtn
// or mse), without double quant (which moves each absmax by less than 1%
// and is left out of the estimate). Like Int4FakeQuant it reuses its
// buffers: one per goroutine.
func NF4FakeQuant(m Method, blockSize int) FakeQuant {
	var packed []byte
	var absmax []float32
	return func(dst, src []float32, n, k int) error {
		np, na := NF4Sizes(len(src), blockSize)
		packed, absmax = grow(packed, np), grow(absmax, na)
		if err := QuantizeNF4With(m, packed, absmax, src, blockSize); err != nil {
			return err
		}
		return DequantizeNF4(dst, packed, absmax, blockSize)
	}
}

// grow returns b resliced to n, reallocated only when its capacity is short
// (n is a size the caller computed from checked dimensions; a negative one
// gives an empty slice and the quantizer's own length error).
func grow[T any](b []T, n int) []T {
	if n < 0 {
		return b[:0]
	}
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}
