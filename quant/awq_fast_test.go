package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// heavyAWQCase is a Linear with Student-t weights (3 degrees of freedom:
// the heavy tails trained transformer weights have) and activation
// statistics with log-normal channel magnitudes plus a few outlier
// channels 10–50× louder, the regime where α matters.
func heavyAWQCase(seed uint64, n, k int) (w []float32, meanAbs, meanSq []float64) {
	r := newRand(seed)
	w = make([]float32, n*k)
	for i := range w {
		w[i] = float32(0.02 * studentT3(r))
	}
	meanAbs, meanSq = make([]float64, k), make([]float64, k)
	for j := range meanAbs {
		g := math.Exp(0.7 * r.NormFloat64())
		if r.IntN(40) == 0 {
			g *= 10 + 40*r.Float64()
		}
		mu := 0.3 * r.NormFloat64() * g
		// x_j ~ N(mu, g²): E[x²] = mu² + g², E|x| ≈ √(mu² + g²·2/π) (a
		// statistic, not exact: AWQ only needs its ordering).
		meanSq[j] = mu*mu + g*g
		meanAbs[j] = math.Sqrt(mu*mu + g*g*2/math.Pi)
	}
	return w, meanAbs, meanSq
}

func studentT3(r *rand.Rand) float64 {
	var c float64
	for range 3 {
		z := r.NormFloat64()
		c += z * z
	}
	return r.NormFloat64() / math.Sqrt(c/3)
}

// TestAWQFastGap runs the full grid and the fast search on random
// heavy-tailed matrices (int4 hqq at blocks 32 and 128, asymmetric and
// symmetric mse, nf4 mse) and holds the fast choice's real estimate within
// AWQFastMaxGap of the full grid's optimum. The fast search's own numbers
// are checked against the full search's at the α it evaluated (same
// function, same bits), and α = 0 is always among them.
func TestAWQFastGap(t *testing.T) {
	type cfg struct {
		name      string
		fq, proxy FakeQuant
	}
	var cfgs []cfg
	for _, b := range []int{32, 128} {
		p := Int4Params{BlockSize: b}
		cfgs = append(cfgs, cfg{"int4-hqq-b" + itoa(b), Int4FakeQuant(MethodHQQ, p), Int4FakeQuant(MethodRTN, p)})
	}
	ps := Int4Params{BlockSize: 64, Symmetric: true}
	cfgs = append(cfgs, cfg{"int4-mse-sym-b64", Int4FakeQuant(MethodMSE, ps), Int4FakeQuant(MethodRTN, ps)},
		cfg{"nf4-mse-b64", NF4FakeQuant(MethodMSE, 64), NF4FakeQuant(MethodRTN, 64)})
	shapes := [][2]int{{384, 384}, {768, 256}, {256, 768}}
	var worst float64
	var real, full int
	for _, c := range cfgs {
		for si, sh := range shapes {
			for seed := uint64(1); seed <= 4; seed++ {
				w, ma, ms := heavyAWQCase(seed*10+uint64(si), sh[0], sh[1])
				ls := []AWQLinear{{W: w, N: sh[0]}}
				grid := AWQGrid()
				fr, err := AWQSearch(ls, sh[1], ma, ms, grid, c.fq)
				if err != nil {
					t.Fatal(err)
				}
				fs, err := AWQSearchFast(ls, sh[1], ma, ms, grid, c.fq, fastCfg(c.proxy))
				if err != nil {
					t.Fatal(err)
				}
				bf, bs := indexOf(grid, fr.Alpha), indexOf(grid, fs.Alpha)
				for g, e := range fs.Err {
					if !math.IsNaN(e) && e != fr.Err[g] {
						t.Fatalf("%s: fast estimate at α=%v is %v, full %v", c.name, grid[g], e, fr.Err[g])
					}
				}
				if math.IsNaN(fs.Err[0]) || fs.Err[bs] > fs.Err[0] {
					t.Fatalf("%s: α=0 not evaluated or beaten by a worse choice", c.name)
				}
				gap := fs.Err[bs]/fr.Err[bf] - 1
				worst = max(worst, gap)
				real, full = real+fs.Evaluated, full+len(grid)
				if gap > AWQFastMaxGap {
					t.Errorf("%s %v seed %d: fast α=%v estimate %.4g, full α=%v %.4g: gap %.2f%%",
						c.name, sh, seed, fs.Alpha, fs.Err[bs], fr.Alpha, fr.Err[bf], 100*gap)
				}
				if fs.Alpha != fr.Alpha {
					t.Logf("%s %v seed %d: fast α=%v full α=%v gap %.3f%%", c.name, sh, seed, fs.Alpha, fr.Alpha, 100*gap)
				}
			}
		}
	}
	t.Logf("worst gap %.3f%%; real evaluations %d of %d (%.1f per group)", 100*worst, real, full, float64(real)/float64(full)*float64(len(AWQGrid())))
}

func indexOf(g []float64, a float64) int {
	for i, v := range g {
		if v == a {
			return i
		}
	}
	return -1
}

var fastCfg = DefaultAWQFast

// TestAWQFastEdges: a configuration without a proxy, finalists or radius is
// refused; a grid of α = 0 alone is evaluated once and gives the base
// method (s = 1); bad statistics are refused as by AWQSearch.
func TestAWQFastEdges(t *testing.T) {
	w, ma, ms := heavyAWQCase(5, 8, 64)
	ls := []AWQLinear{{W: w, N: 8}}
	p := Int4Params{BlockSize: 32}
	fq, proxy := Int4FakeQuant(MethodHQQ, p), Int4FakeQuant(MethodRTN, p)
	for _, f := range []AWQFast{{}, {Proxy: proxy, RowStride: 1, Finalists: 0, Radius: 1}, {Proxy: proxy, RowStride: 0, Finalists: 1, Radius: 1},
		{Proxy: proxy, RowStride: 1, Finalists: 1, Radius: 0}} {
		if _, err := AWQSearchFast(ls, 64, ma, ms, AWQGrid(), fq, f); err == nil {
			t.Errorf("configuration %+v accepted", f)
		}
	}
	if _, err := AWQSearchFast(ls, 64, ma[:3], ms, AWQGrid(), fq, DefaultAWQFast(proxy)); err == nil {
		t.Error("short statistics accepted")
	}
	res, err := AWQSearchFast(ls, 64, ma, ms, []float64{0}, fq, DefaultAWQFast(proxy))
	if err != nil {
		t.Fatal(err)
	}
	if res.Alpha != 0 || res.Evaluated != 1 {
		t.Errorf("grid {0}: α=%v after %d evaluations", res.Alpha, res.Evaluated)
	}
	for _, s := range res.Scales {
		if s != 1 {
			t.Fatalf("grid {0}: scale %v", s)
		}
	}
}
