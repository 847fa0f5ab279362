package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refCount is the reference for CountNonFinite: math.IsNaN / math.IsInf per
// value.
func refCount(x []float32) NonFiniteCount {
	var c NonFiniteCount
	for _, v := range x {
		if math.IsNaN(float64(v)) {
			c.NaN++
		} else if math.IsInf(float64(v), 0) {
			c.Inf++
		}
	}
	return c
}

// AllFinite's bit trick against the reference on the boundary values of
// every exponent class and on random bit patterns (a quarter of them with
// an all-ones exponent), at every length around the 4-wide unrolling.
func TestAllFiniteAndCount(t *testing.T) {
	edges := []uint32{0, 0x80000000, 1, 0x007fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, // finite
		0x7f800000, 0xff800000, 0x7f800001, 0x7fc00000, 0xffffffff, 0x7fffffff} // Inf, -Inf, NaNs
	for _, b := range edges {
		x := []float32{math.Float32frombits(b)}
		if got, want := CountNonFinite(x), refCount(x); got != want || AllFinite(x) != !want.Any() {
			t.Errorf("%#08x: count %+v all-finite %v, want %+v", b, got, AllFinite(x), want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 17))
	for n := 0; n < 40; n++ {
		for trial := 0; trial < 50; trial++ {
			x := make([]float32, n)
			for i := range x {
				b := rng.Uint32()
				if rng.IntN(40) == 0 {
					b |= 0x7f800000
				}
				x[i] = math.Float32frombits(b)
			}
			if got, want := CountNonFinite(x), refCount(x); got != want || AllFinite(x) != !want.Any() {
				t.Fatalf("n %d: count %+v all-finite %v, want %+v", n, got, AllFinite(x), want)
			}
		}
	}
}

// Issue 17 case 7: the error statistics count NaN and ±Inf on each side
// (they used to be skipped without a trace beyond one pair count), on both
// the assembly and the Go path, whole rows included.
func TestCompareCountsNonFinite(t *testing.T) { bothPaths(t, testCompareCountsNonFinite) }

func testCompareCountsNonFinite(t *testing.T) {
	const rows, cols = 6, 37 // cols not a multiple of 8: the Go tail runs too
	ref := make([]float32, rows*cols)
	for i := range ref {
		ref[i] = float32(i%13) - 6
	}
	got := append([]float32(nil), ref...)
	nan := float32(math.NaN())
	for c := 0; c < cols; c++ { // a whole NaN row, kept by the conversion
		ref[2*cols+c], got[2*cols+c] = nan, nan
	}
	ref[5], got[5] = 70000, float32(math.Inf(1)) // an fp16 overflow
	ref[9], got[9] = float32(math.Inf(-1)), float32(math.Inf(-1))
	s := Compare(ref, got)
	want := ErrorStats{Ref: NonFiniteCount{NaN: cols, Inf: 1}, Got: NonFiniteCount{NaN: cols, Inf: 2}, NonFinite: cols + 2}
	if s.Ref != want.Ref || s.Got != want.Got || s.NonFinite != want.NonFinite || s.N != int64(len(ref))-want.NonFinite {
		t.Errorf("got ref %+v got %+v pairs %d N %d, want ref %+v got %+v pairs %d", s.Ref, s.Got, s.NonFinite, s.N, want.Ref, want.Got, want.NonFinite)
	}
	// Chunked and merged, the counts add up the same.
	var acc ErrorAcc
	for i := 0; i < len(ref); i += 50 {
		var c ErrorAcc
		c.Add(ref[i:min(i+50, len(ref))], got[i:min(i+50, len(got))])
		acc.Merge(&c)
	}
	if m := acc.Stats(); m.Ref != s.Ref || m.Got != s.Got || m.NonFinite != s.NonFinite {
		t.Errorf("merged chunks: ref %+v got %+v, want %+v %+v", m.Ref, m.Got, s.Ref, s.Got)
	}
	// A finite tensor takes the fast path and counts nothing.
	if f := Compare(got[3*cols:4*cols], got[3*cols:4*cols]); f.Ref.Any() || f.Got.Any() || f.NonFinite != 0 {
		t.Errorf("finite slice: %+v", f)
	}
}

// BenchmarkAllFinite is the cost every converted tensor pays when error
// statistics are off (with them on, the statistics kernel detects
// non-finite sums for free).
func BenchmarkAllFinite(b *testing.B) {
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(i) * 1e-3
	}
	b.SetBytes(int64(len(x) * 4))
	b.ReportAllocs()
	for b.Loop() {
		if !AllFinite(x) {
			b.Fatal("finite data reported non-finite")
		}
	}
}

// AllFinite16 against the reference decode, for fp16 and bf16 codes at every
// length and alignment around the 4-lane words.
func TestAllFinite16(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 17))
	for _, bf16 := range []bool{false, true} {
		exp := uint16(0x7c00)
		if bf16 {
			exp = 0x7f80
		}
		for n := 0; n < 40; n++ {
			for trial := 0; trial < 50; trial++ {
				buf := make([]uint16, n+3)
				for i := range buf {
					buf[i] = uint16(rng.Uint32())
					if buf[i]&exp == exp && rng.IntN(4) != 0 {
						buf[i] ^= 0x0400 // most of the random all-ones exponents made finite
					}
				}
				off := trial % 4
				c := buf[off : off+n]
				want := true
				for _, v := range c {
					if v&exp == exp {
						want = false
					}
				}
				if got := AllFinite16(c, bf16); got != want {
					t.Fatalf("bf16 %v n %d off %d: %v, want %v (%x)", bf16, n, off, got, want, c)
				}
			}
		}
	}
	// Float32 at an odd offset too.
	x := []float32{1, 2, float32(math.Inf(1)), 4, 5}
	if AllFinite(x[1:]) || !AllFinite(x[3:]) {
		t.Error("AllFinite on unaligned subslices")
	}
}

// BenchmarkAllFinite16 is the --no-stats cost of an fp16/bf16 tensor: the
// codes of 1 Mi values (SetBytes counts the float32 source they stand for).
func BenchmarkAllFinite16(b *testing.B) {
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(i) * 1e-3
	}
	h := make([]uint16, len(x))
	F32ToF16(h, x)
	b.SetBytes(int64(len(x) * 4))
	b.ReportAllocs()
	for b.Loop() {
		if !AllFinite16(h, false) {
			b.Fatal("finite data reported non-finite")
		}
	}
}
