package quant

import (
	"math"
	"math/big"
	"testing"
)

// exactSums is the reference for ErrorAcc: the four sums over the finite
// pairs computed exactly (every float32 difference, product and sum is
// exact at 2048 bits: the terms span 2^-298 to 2^256), and Σ|term| in
// float64 as the scale of the rounding bound.
type exactSums struct {
	n, nonFinite int64
	sum          [4]*big.Float // Σref², Σ(ref-got)², Σref·got, Σgot²
	abs          [4]float64
	maxAbs       float64
}

func exactPairSums(ref, got []float32) exactSums {
	const prec = 2048
	nb := func() *big.Float { return new(big.Float).SetPrec(prec) }
	s := exactSums{sum: [4]*big.Float{nb(), nb(), nb(), nb()}}
	for i := range ref {
		x, y := float64(ref[i]), float64(got[i])
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			s.nonFinite++
			continue
		}
		s.n++
		X, Y := nb().SetFloat64(x), nb().SetFloat64(y)
		E := nb().Sub(X, Y)
		s.sum[0].Add(s.sum[0], nb().Mul(X, X))
		s.sum[1].Add(s.sum[1], nb().Mul(E, E))
		s.sum[2].Add(s.sum[2], nb().Mul(X, Y))
		s.sum[3].Add(s.sum[3], nb().Mul(Y, Y))
		e, _ := E.Float64()
		s.abs[0] += x * x
		s.abs[1] += e * e
		s.abs[2] += math.Abs(x * y)
		s.abs[3] += y * y
		s.maxAbs = math.Max(s.maxAbs, math.Abs(x-y))
	}
	return s
}

// checkAcc compares one Add of (ref, got) on a zero accumulator with the
// exact sums. Bound (Higham, recursive summation): with u = 2^-53 and
// γ(k) = k·u/(1-k·u), a sum of terms t̂ᵢ computed as below is within
// γ(k)·Σ|t̂ᵢ| of Σt̂ᵢ, k the longest chain of additions any term goes
// through:
//   - pure Go: 4 lanes of at most n/4+4 terms (the tail goes to lane 0),
//     then 2 levels of pairwise combination: k ≤ n/4+6;
//   - AVX2: 8 lanes of n/8 terms, 3 levels of combination, then the Go
//     tail (≤ 7 terms over ≤ 4 levels) and one addition: k ≤ n/8+12;
//   - the non-finite fallback: sequential, k ≤ n.
//
// ref², ref·got and got² are exact in float64; (ref-got)² carries the
// rounding of the difference and of the product, a factor within γ(3) of
// 1, which adds 3 to k. So each sum is within γ(n/4+15)·Σ|t| of the exact
// one (γ(n+3) on the fallback): 1.8e-12 relative for 65536 non-cancelling
// terms, where dropping or doubling any term of a 65536-element normal
// sample is off by ~1e-5, and a wrong lane or tail by far more. MaxAbs
// takes no rounding: |fl(ref-got)| is computed identically everywhere.
func checkAcc(t *testing.T, name string, ref, got []float32, a *ErrorAcc) {
	t.Helper()
	w := exactPairSums(ref, got)
	if a.n != w.n || a.nonFinite != w.nonFinite || a.maxAbs != w.maxAbs {
		t.Fatalf("%s: n %d nonFinite %d maxAbs %g, want %d %d %g", name, a.n, a.nonFinite, a.maxAbs, w.n, w.nonFinite, w.maxAbs)
	}
	k := float64(len(ref)/4 + 15)
	if w.nonFinite > 0 {
		k = float64(len(ref) + 3)
	}
	const u = 0x1p-53
	gamma := k * u / (1 - k*u)
	for i, s := range [4]float64{a.ref2, a.err2, a.dot, a.got2} {
		diff, _ := new(big.Float).SetPrec(2048).Sub(new(big.Float).SetFloat64(s), w.sum[i]).Float64()
		// 1+1e-9: slack for Σ|t| itself being a float64 sum.
		if tol := gamma * w.abs[i] * (1 + 1e-9); math.Abs(diff) > tol {
			ex, _ := w.sum[i].Float64()
			t.Fatalf("%s: sum %d = %.17g, exact %.17g: off by %g > %g (n %d)", name, i, s, ex, diff, tol, len(ref))
		}
	}
}

func TestSumPairsPaths(t *testing.T) {
	r := newRand(21)
	type pair struct{ ref, got []float32 }
	cases := map[string]pair{}
	for _, n := range []int{65536, 65536 + 7, 100003} {
		ref := normals(r, n, 1)
		got := make([]float32, n)
		for i := range got {
			got[i] = ref[i] + float32(r.NormFloat64()*0.01)
		}
		cases["normal"+itoa(n)] = pair{ref, got}
	}
	// full exponent range: heavy cancellation in Σref·got
	cases["bits"] = pair{randomBits(r, 4099, true), randomBits(r, 4099, true)}
	for name, blk := range adversarialBlocks() {
		rev := make([]float32, len(blk))
		noisy := make([]float32, len(blk))
		for i, x := range blk {
			rev[len(blk)-1-i] = x
			noisy[i] = x * float32(1+r.NormFloat64()*1e-3)
		}
		cases[name+"/reversed"] = pair{blk, rev}
		cases[name+"/noisy"] = pair{blk, noisy}
	}
	short := cases["normal65543"]
	for n := 0; n <= 40; n++ {
		cases["short"+itoa(n)] = pair{short.ref[:n], short.got[:n]}
	}
	bothPaths(t, func(t *testing.T) {
		for name, c := range cases {
			var a ErrorAcc
			a.Add(c.ref, c.got)
			checkAcc(t, name, c.ref, c.got, &a)
		}
	})
	if !hasStatsAsm {
		return
	}
	// The paths may differ in the last bits only, and the fallback for
	// non-finite pairs is shared, so it gives identical bits.
	ref, got := short.ref[:37], append([]float32(nil), short.got[:37]...)
	for i := range ref {
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			g := append([]float32(nil), got...)
			g[i] = float32(bad)
			var s [2]ErrorAcc
			for p, asm := range []bool{true, false} {
				useAsm = asm
				s[p].Add(ref, g)
			}
			useAsm = true
			if s[0] != s[1] {
				t.Fatalf("non-finite at %d: asm %+v, go %+v", i, s[0], s[1])
			}
			checkAcc(t, "non-finite", ref, g, &s[0])
		}
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// TestCompareSelf: a tensor compared with itself has cosine exactly 1, and
// with its negation exactly -1, on both paths and at every scale (the sums
// are then equal bit for bit, and Stats takes one square root).
func TestCompareSelf(t *testing.T) {
	r := newRand(22)
	bothPaths(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 9, 100, 10007} {
			for _, sigma := range []float64{1e-30, 0.02, 1, 1e30} {
				x := normals(r, n, sigma)
				neg := make([]float32, n)
				for i := range x {
					neg[i] = -x[i]
				}
				if c := Compare(x, x).Cosine; c != 1 {
					t.Errorf("n %d σ %g: self cosine %v", n, sigma, c)
				}
				if c := Compare(x, neg).Cosine; c != -1 {
					t.Errorf("n %d σ %g: negated cosine %v", n, sigma, c)
				}
			}
		}
	})
}

// FuzzCompare splits the input into ref and got halves and checks both
// paths against the exact sums.
func FuzzCompare(f *testing.F) {
	seedFloats(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, data []byte) {
		v := floatsFromBytes(data)
		h := len(v) / 2
		ref, got := v[:h], v[h:2*h]
		var s [2]ErrorAcc
		for p, asm := range []bool{true, false} {
			useAsm = asm
			s[p].Add(ref, got)
			checkAcc(t, map[bool]string{true: "asm", false: "go"}[asm], ref, got, &s[p])
			// The non-finite counts per side match the reference on
			// both paths (issue 17 case 7).
			if st := s[p].Stats(); st.Ref != refCount(ref) || st.Got != refCount(got) {
				t.Errorf("asm %v: counts ref %+v got %+v, want %+v %+v", asm, st.Ref, st.Got, refCount(ref), refCount(got))
			}
			if c := CountNonFinite(ref); c != refCount(ref) {
				t.Errorf("CountNonFinite %+v, want %+v", c, refCount(ref))
			}
		}
		useAsm = true
	})
}
