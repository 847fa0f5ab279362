package quant

import (
	"math"
	"slices"
	"testing"
)

// awqCase is a small Linear with calibration activations whose channels
// differ in magnitude (a few outlier channels, as trained ViTs have), so
// that the error estimate really depends on α.
type awqCase struct {
	w    []float32
	n, k int
	x    [][]float64 // calibration rows [T][k]
}

func newAWQCase(seed uint64, n, k, rows int) awqCase {
	r := newRand(seed)
	c := awqCase{w: normals(r, n*k, 0.05), n: n, k: k}
	gain := make([]float64, k)
	for j := range gain {
		gain[j] = 0.2 + r.Float64()
		if j%11 == 3 {
			gain[j] *= 20 // outlier channel
		}
	}
	for t := 0; t < rows; t++ {
		row := make([]float64, k)
		for j := range row {
			row[j] = gain[j] * (r.NormFloat64() + 0.3)
		}
		c.x = append(c.x, row)
	}
	return c
}

// stats64 are E|x_j| and E[x_j²] computed directly from the rows.
func (c awqCase) stats64() (meanAbs, meanSq []float64) {
	meanAbs, meanSq = make([]float64, c.k), make([]float64, c.k)
	for _, row := range c.x {
		for j, v := range row {
			meanAbs[j] += math.Abs(v)
			meanSq[j] += v * v
		}
	}
	for j := range meanAbs {
		meanAbs[j] /= float64(len(c.x))
		meanSq[j] /= float64(len(c.x))
	}
	return meanAbs, meanSq
}

// refAWQScales is AWQScales in float64 with an explicit floor and
// normalisation, for comparison.
func refAWQScales(meanAbs []float64, a float64) []float64 {
	mx := slices.Max(meanAbs)
	s := make([]float64, len(meanAbs))
	lo, hi := math.Inf(1), 0.0
	for j, m := range meanAbs {
		s[j] = math.Pow(math.Max(m, mx*1e-4), a)
		lo, hi = math.Min(lo, s[j]), math.Max(hi, s[j])
	}
	for j := range s {
		s[j] /= math.Sqrt(lo * hi)
	}
	return s
}

func TestAWQScales(t *testing.T) {
	c := newAWQCase(1, 4, 40, 50)
	ma, _ := c.stats64()
	s := make([]float32, c.k)
	for _, a := range AWQGrid() {
		if err := AWQScales(s, ma, a); err != nil {
			t.Fatal(err)
		}
		ref := refAWQScales(ma, a)
		for j := range s {
			// One float32 rounding of the float64 value.
			if d := math.Abs(float64(s[j])-ref[j]) / ref[j]; d > 1e-7 {
				t.Fatalf("α=%v: s[%d] = %v, float64 reference %v", a, j, s[j], ref[j])
			}
			if a == 0 && s[j] != 1 {
				t.Fatalf("α=0: s[%d] = %v, want exactly 1", j, s[j])
			}
		}
	}
	if err := AWQScales(s, make([]float64, c.k), 0.5); err != nil || slices.ContainsFunc(s, func(v float32) bool { return v != 1 }) {
		t.Errorf("all-zero statistics: %v, %v; want ones", err, s[:4])
	}
	ma[0] = math.NaN()
	if err := AWQScales(s, ma, 0.5); err == nil {
		t.Error("NaN statistic accepted")
	}
}

// TestAWQSearchFloat64 checks the search against a float64 evaluation of
// the same estimate, computed from the calibration rows themselves: for
// every α, Σ_j E[x_j²]·(w_ij - ŵ_ij)² with ŵ the reconstruction in the
// original space. The reported errors must match it (to float64 summation
// order, 1e-9 relative) and the chosen α must be its argmin over the grid.
func TestAWQSearchFloat64(t *testing.T) {
	for _, tc := range []struct {
		name string
		fq   FakeQuant
	}{
		{"int4-hqq-asym-b32", Int4FakeQuant(MethodHQQ, Int4Params{BlockSize: 32})},
		{"int4-rtn-sym-b16", Int4FakeQuant(MethodRTN, Int4Params{BlockSize: 16, Symmetric: true})},
		{"nf4-mse-b64", NF4FakeQuant(MethodMSE, 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAWQCase(7, 12, 96, 64)
			b := newAWQCase(8, 5, 96, 1) // a second member sharing the input
			ma, ms := a.stats64()
			rowDiv := make([]float32, b.n)
			for i := range rowDiv {
				rowDiv[i] = float32(0.5 + float64(i)/4)
			}
			members := []AWQLinear{{W: a.w, N: a.n}, {W: b.w, N: b.n, RowDiv: rowDiv}}
			grid := AWQGrid()
			res, err := AWQSearch(members, a.k, ma, ms, grid, tc.fq)
			if err != nil {
				t.Fatal(err)
			}
			best, bestErr := -1, math.Inf(1)
			for g, alpha := range grid {
				ref := refAWQScales(ma, alpha)
				var e float64
				for _, m := range members {
					s32 := make([]float32, a.k)
					for j := range s32 {
						s32[j] = float32(ref[j])
					}
					sc := make([]float32, len(m.W))
					for i := 0; i < m.N; i++ {
						for j := 0; j < a.k; j++ {
							v := float32(m.W[i*a.k+j] * s32[j])
							if m.RowDiv != nil {
								v /= m.RowDiv[i]
							}
							sc[i*a.k+j] = v
						}
					}
					dq := make([]float32, len(sc))
					if err := tc.fq(dq, sc, m.N, a.k); err != nil {
						t.Fatal(err)
					}
					for i := 0; i < m.N; i++ {
						d := 1.0
						if m.RowDiv != nil {
							d = float64(m.RowDiv[i])
						}
						for j := 0; j < a.k; j++ {
							r := float64(m.W[i*a.k+j]) - float64(dq[i*a.k+j])*d/float64(s32[j])
							e += ms[j] * r * r
						}
					}
				}
				if math.Abs(res.Err[g]-e) > 1e-9*e {
					t.Errorf("α=%v: estimate %v, float64 reference %v", alpha, res.Err[g], e)
				}
				if e < bestErr {
					best, bestErr = g, e
				}
			}
			if res.Alpha != grid[best] {
				t.Errorf("chose α=%v, reference argmin α=%v (errors %v)", res.Alpha, grid[best], res.Err)
			}
			if res.Err[best] > res.Err[0] {
				t.Errorf("chosen error %v above α=0's %v", res.Err[best], res.Err[0])
			}
			gain := WeightedSQNR(res.Signal, res.Err[best]) - WeightedSQNR(res.Signal, res.Err[0])
			t.Logf("α=%.2f, weighted SQNR gain over the base %.2f dB", res.Alpha, gain)
			if gain <= 0 {
				t.Errorf("no weighted-error gain on activations with outlier channels (α=%v)", res.Alpha)
			}
		})
	}
}

// TestAWQAlphaZeroIsBase: with the grid {0} every scale is exactly 1, the
// scaled weight is W bit for bit, and so the quantization is the base
// method's.
func TestAWQAlphaZeroIsBase(t *testing.T) {
	c := newAWQCase(3, 8, 64, 20)
	ma, ms := c.stats64()
	p := Int4Params{BlockSize: 32}
	res, err := AWQSearch([]AWQLinear{{W: c.w, N: c.n}}, c.k, ma, ms, []float64{0}, Int4FakeQuant(MethodHQQ, p))
	if err != nil {
		t.Fatal(err)
	}
	scaled := make([]float32, len(c.w))
	if err := AWQScaleWeight(scaled, c.w, c.n, c.k, res.Scales, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scaled, c.w) {
		t.Fatal("α=0 scaling changed the weight")
	}
	want, got := make([]float32, len(c.w)), make([]float32, len(c.w))
	if err := Int4FakeQuant(MethodHQQ, p)(want, c.w, c.n, c.k); err != nil {
		t.Fatal(err)
	}
	if err := Int4FakeQuant(MethodHQQ, p)(got, scaled, c.n, c.k); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, got) {
		t.Fatal("α=0 quantization differs from the base method")
	}
	AWQUnscale(got, c.n, c.k, res.Scales, nil)
	if !slices.Equal(want, got) {
		t.Fatal("unscaling with s = 1 changed the reconstruction")
	}
}

func TestAWQErrors(t *testing.T) {
	c := newAWQCase(4, 4, 32, 4)
	ma, ms := c.stats64()
	fq := Int4FakeQuant(MethodRTN, Int4Params{BlockSize: 16, Symmetric: true})
	if _, err := AWQSearch([]AWQLinear{{W: c.w, N: c.n + 1}}, c.k, ma, ms, AWQGrid(), fq); err == nil {
		t.Error("member with a wrong row count accepted")
	}
	if _, err := AWQSearch(nil, c.k, ma[:3], ms, AWQGrid(), fq); err == nil {
		t.Error("short statistics accepted")
	}
	if err := QuantizeInt4With(MethodAWQ, nil, nil, nil, nil, 0, 0, Int4Params{BlockSize: 16}); err == nil {
		t.Error("QuantizeInt4With accepted awq")
	}
	if m, err := ParseMethod("awq"); err != nil || m != MethodAWQ {
		t.Errorf("ParseMethod(awq) = %q, %v", m, err)
	}
}
