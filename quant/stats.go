package quant

import (
	"math"
	"unsafe"
)

// Weight-error statistics between a reference tensor and its reconstruction
// (dequantized weights), accumulated in float64.
//
// Determinism contract: floating-point addition is not associative, so the
// sums depend on how a tensor is split into Add calls and in which order
// accumulators are merged. Add reduces each call's slice in a fixed order and
// then adds that partial sum to the accumulator, so the result is a pure
// function of the sequence of slices. To get the same numbers for any thread
// count, split each tensor into StatsChunk-element chunks (the last one
// shorter), Add each chunk to its own zero ErrorAcc (on any goroutine), and
// Merge those into one zero ErrorAcc in chunk order.
//
// The reduction of a slice is one of two code paths, fixed for a given
// machine and build: an AVX2+FMA kernel (amd64 without the purego tag, on a
// CPU that has both) or the pure-Go loop. Each term (ref², (ref-got)²,
// ref·got, got²) is rounded identically on both, but they add the terms in
// different orders (8 lanes vs 4), so their sums may differ in the last bits
// (relative 1e-12 or less on a StatsChunk, see TestSumPairsPaths); MaxAbs,
// N and NonFinite are always identical. The numbers are a pure function of
// the inputs and the code path, never of the thread count.

// StatsChunk is the chunk length callers use when they accumulate a tensor in
// parallel (see the determinism contract above).
const StatsChunk = 1 << 16

// SQNRMaxDB is the finite stand-in for an infinite SQNR that Finite uses.
// Real float32 data cannot come near it (rounding to float32 itself is about
// 150 dB).
const SQNRMaxDB = 999

// ErrorStats summarizes reconstruction error over the finite pairs.
type ErrorStats struct {
	// N is the number of (ref, got) pairs with both values finite.
	N int64 `json:"n"`
	// SQNRdB is 10·log10(Σref² / Σ(ref-got)²): +Inf when the
	// reconstruction is exact (no error, including no data), -Inf when the
	// reference is all zeros but the reconstruction is not. encoding/json
	// rejects infinities: encode Finite() instead, or map +Inf to "exact"
	// yourself.
	SQNRdB float64 `json:"sqnr_db"`
	// Cosine is Σref·got / (‖ref‖·‖got‖): 1 when both are all zeros, 0
	// when only one is.
	Cosine float64 `json:"cosine"`
	// MaxAbs is max |ref-got|; RMSE is sqrt(Σ(ref-got)²/N) (0 when N is 0).
	MaxAbs float64 `json:"max_abs"`
	RMSE   float64 `json:"rmse"`
	// NonFinite counts pairs skipped because ref or got is NaN or ±Inf (an
	// FP16 overflow shows up here; F32ToF16 also returns that count). The
	// sums above then describe only the finite pairs: callers must report
	// such a tensor as non-finite, never by its SQNR alone.
	NonFinite int64 `json:"non_finite"`
	// Ref and Got count the NaN and ±Inf values on each side.
	Ref NonFiniteCount `json:"ref,omitzero"`
	Got NonFiniteCount `json:"got,omitzero"`
}

// NonFiniteCount counts the NaN and the ±Inf values of a tensor.
type NonFiniteCount struct {
	NaN int64 `json:"nan"`
	Inf int64 `json:"inf"`
}

// Any reports whether any value was counted.
func (c NonFiniteCount) Any() bool { return c.NaN+c.Inf > 0 }

// Add adds d's counts to c's.
func (c *NonFiniteCount) Add(d NonFiniteCount) { c.NaN += d.NaN; c.Inf += d.Inf }

// CountNonFinite counts the NaN and ±Inf values of x. It first checks the
// whole slice with a branch-free scan (AllFinite) and counts value by value
// only when that finds one, so finite tensors, nearly all of them, pay one
// cheap pass.
func CountNonFinite(x []float32) NonFiniteCount {
	if AllFinite(x) {
		return NonFiniteCount{}
	}
	return countNonFiniteSlow(x)
}

// AllFinite reports whether x holds no NaN and no ±Inf. A float32 is not
// finite exactly when its exponent bits are all ones, that is when its
// magnitude bits are ≥ 0x7f800000; adding 0x00800000 then carries into bit
// 31 (and never further: 0x7fffffff + 0x00800000 < 2^32). Two values share
// a 64-bit word, so OR-ing those sums needs no branch and one add per pair.
func AllFinite(x []float32) bool {
	return allFiniteWords(x, 0x7fffffff7fffffff, 0x0080000000800000, 0x8000000080000000,
		func(v float32) uint64 { return uint64(math.Float32bits(v)) })
}

// AllFinite16 is AllFinite for fp16 codes, or bf16 codes when bf16 is set:
// four to a word. An fp16/bf16 conversion's output is non-finite wherever
// its input was, so a finite output proves a finite input.
func AllFinite16(codes []uint16, bf16 bool) bool {
	add := uint64(0x0400040004000400) // fp16: exponent 0x7c00
	if bf16 {
		add = 0x0080008000800080 // bf16: exponent 0x7f80
	}
	return allFiniteWords(codes, 0x7fff7fff7fff7fff, add, 0x8000800080008000,
		func(c uint16) uint64 { return uint64(c) })
}

// allFiniteWords ORs (word & mask) + add over x viewed as 64-bit words
// (the values before the first 8-byte boundary and after the last one value
// by value, in the lowest lane) and tests the carry bits.
func allFiniteWords[T float32 | uint16](x []T, mask, add, carry uint64, bits func(T) uint64) bool {
	var zero T
	size := int(unsafe.Sizeof(zero))
	lanes := 8 / size
	var acc uint64
	for len(x) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(x)))%8 != 0 {
		acc |= (bits(x[0]) & mask) + add
		x = x[1:]
	}
	words := len(x) / lanes
	if words > 0 {
		w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(x))), words)
		i := 0
		for ; i+4 <= len(w); i += 4 {
			v := w[i : i+4 : i+4]
			acc |= (v[0] & mask) + add
			acc |= (v[1] & mask) + add
			acc |= (v[2] & mask) + add
			acc |= (v[3] & mask) + add
		}
		for ; i < len(w); i++ {
			acc |= (w[i] & mask) + add
		}
	}
	for _, v := range x[words*lanes:] {
		acc |= (bits(v) & mask) + add
	}
	return acc&carry == 0
}

func countNonFiniteSlow(x []float32) NonFiniteCount {
	var c NonFiniteCount
	for _, v := range x {
		c.add(float64(v))
	}
	return c
}

func (c *NonFiniteCount) add(v float64) {
	switch {
	case math.IsNaN(v):
		c.NaN++
	case math.IsInf(v, 0):
		c.Inf++
	}
}

// ErrorAcc accumulates ErrorStats. The zero value is ready to use.
type ErrorAcc struct {
	n, nonFinite          int64
	ref2, err2, dot, got2 float64
	maxAbs                float64
	refNF, gotNF          NonFiniteCount
}

// Add accumulates the pairs (ref[i], got[i]). It panics if the lengths
// differ.
func (a *ErrorAcc) Add(ref, got []float32) {
	if len(ref) != len(got) {
		panic("quant: ErrorAcc.Add: ref and got lengths differ")
	}
	s := sumPairs(ref, got)
	if !(isFinite(s.ref2) && isFinite(s.err2) && isFinite(s.dot) && isFinite(s.got2)) {
		// Some pair is NaN or ±Inf: redo this slice, skipping those.
		s = sumFinitePairs(ref, got)
	}
	a.Merge(&s)
}

// Merge adds b's sums to a's (order-sensitive, see the contract above).
func (a *ErrorAcc) Merge(b *ErrorAcc) {
	a.n += b.n
	a.nonFinite += b.nonFinite
	a.ref2 += b.ref2
	a.err2 += b.err2
	a.dot += b.dot
	a.got2 += b.got2
	a.maxAbs = max(a.maxAbs, b.maxAbs)
	a.refNF.Add(b.refNF)
	a.gotNF.Add(b.gotNF)
}

// Stats returns the statistics of everything accumulated so far.
func (a *ErrorAcc) Stats() ErrorStats {
	s := ErrorStats{N: a.n, MaxAbs: a.maxAbs, NonFinite: a.nonFinite, Ref: a.refNF, Got: a.gotNF}
	switch {
	case a.err2 == 0:
		s.SQNRdB = math.Inf(1)
	case a.ref2 == 0:
		s.SQNRdB = math.Inf(-1)
	default:
		s.SQNRdB = 10 * math.Log10(a.ref2/a.err2)
	}
	switch {
	case a.ref2 == 0 && a.got2 == 0:
		s.Cosine = 1
	case a.ref2 == 0 || a.got2 == 0:
		s.Cosine = 0
	default:
		// One square root of the product: in binary floating point
		// sqrt(fl(v·v)) = v exactly, so a tensor compared with itself
		// (dot = ref2 = got2, bit for bit on either code path) gives
		// exactly 1, and with its negation -1. A nonzero sum of float32
		// squares lies in [2^-298, 2^320) (terms below 2^256, fewer than
		// 2^63 of them), so the product is a normal float64.
		s.Cosine = min(max(a.dot/math.Sqrt(a.ref2*a.got2), -1), 1)
	}
	if a.n > 0 {
		s.RMSE = math.Sqrt(a.err2 / float64(a.n))
	}
	return s
}

// Finite returns s with an infinite SQNRdB replaced by ±SQNRMaxDB, so that it
// encodes as JSON; every other field is always finite.
func (s ErrorStats) Finite() ErrorStats {
	s.SQNRdB = min(max(s.SQNRdB, -SQNRMaxDB), SQNRMaxDB)
	return s
}

// Compare returns the statistics of one pair of slices.
func Compare(ref, got []float32) ErrorStats {
	var a ErrorAcc
	a.Add(ref, got)
	return a.Stats()
}

func isFinite(x float64) bool { return x-x == 0 }

// sumPairs reduces a slice without checking for non-finite pairs: any such
// pair makes a sum non-finite, which Add detects (no finite float32 pair can
// overflow a float64 sum: each term is below 2^258). It runs the assembly
// kernel on whole groups of 8 pairs where there is one, then sumPairsGo on
// the rest, and adds the two in that order.
func sumPairs(ref, got []float32) ErrorAcc {
	got = got[:len(ref)]
	if !useAsm || !hasStatsAsm || len(ref) < 8 {
		return sumPairsGo(ref, got)
	}
	s, done := sumPairsAsm(ref, got)
	t := sumPairsGo(ref[done:], got[done:])
	s.n += t.n
	s.ref2 += t.ref2
	s.err2 += t.err2
	s.dot += t.dot
	s.got2 += t.got2
	s.maxAbs = max(s.maxAbs, t.maxAbs)
	return s
}

// sumPairsGo reduces a slice with four independent lanes, combined in a
// fixed order at the end. Products are converted explicitly so that the
// compiler cannot fuse them into the additions (GOAMD64=v3 would), which
// would make the sums depend on the build.
func sumPairsGo(ref, got []float32) ErrorAcc {
	got = got[:len(ref)]
	var r2, e2, d, g2 [4]float64
	var m [4]float64
	i := 0
	for ; i+4 <= len(ref); i += 4 {
		r := ref[i : i+4 : i+4]
		g := got[i : i+4 : i+4]
		for l := 0; l < 4; l++ {
			x, y := float64(r[l]), float64(g[l])
			e := x - y
			r2[l] += float64(x * x)
			e2[l] += float64(e * e)
			d[l] += float64(x * y)
			g2[l] += float64(y * y)
			m[l] = max(m[l], math.Abs(e))
		}
	}
	for ; i < len(ref); i++ {
		x, y := float64(ref[i]), float64(got[i])
		e := x - y
		r2[0] += float64(x * x)
		e2[0] += float64(e * e)
		d[0] += float64(x * y)
		g2[0] += float64(y * y)
		m[0] = max(m[0], math.Abs(e))
	}
	return ErrorAcc{
		n:      int64(len(ref)),
		ref2:   (r2[0] + r2[1]) + (r2[2] + r2[3]),
		err2:   (e2[0] + e2[1]) + (e2[2] + e2[3]),
		dot:    (d[0] + d[1]) + (d[2] + d[3]),
		got2:   (g2[0] + g2[1]) + (g2[2] + g2[3]),
		maxAbs: max(m[0], m[1], m[2], m[3]),
	}
}

// sumFinitePairs is the slow path of Add: sequential, skipping non-finite
// pairs.
func sumFinitePairs(ref, got []float32) ErrorAcc {
	got = got[:len(ref)]
	var s ErrorAcc
	for i, r := range ref {
		x, y := float64(r), float64(got[i])
		if !isFinite(x) || !isFinite(y) {
			s.nonFinite++
			s.refNF.add(x)
			s.gotNF.add(y)
			continue
		}
		e := x - y
		s.n++
		s.ref2 += float64(x * x)
		s.err2 += float64(e * e)
		s.dot += float64(x * y)
		s.got2 += float64(y * y)
		s.maxAbs = max(s.maxAbs, math.Abs(e))
	}
	return s
}
