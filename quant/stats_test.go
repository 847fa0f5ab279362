package quant

import (
	"encoding/json"
	"math"
	"testing"
)

// refStats computes the statistics directly, sequentially, in float64.
func refStats(ref, got []float32) ErrorStats {
	var r2, e2, d, g2, m float64
	var n, nf int64
	for i := range ref {
		x, y := float64(ref[i]), float64(got[i])
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			nf++
			continue
		}
		n++
		r2 += x * x
		e2 += (x - y) * (x - y)
		d += x * y
		g2 += y * y
		m = math.Max(m, math.Abs(x-y))
	}
	s := ErrorStats{N: n, MaxAbs: m, NonFinite: nf, SQNRdB: 10 * math.Log10(r2/e2), Cosine: d / math.Sqrt(r2*g2)}
	if n > 0 {
		s.RMSE = math.Sqrt(e2 / float64(n))
	}
	return s
}

func near(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b)) }

func TestCompare(t *testing.T) { bothPaths(t, testCompare) }

func testCompare(t *testing.T) {
	r := newRand(11)
	ref := normals(r, 10007, 1)
	got := make([]float32, len(ref))
	for i := range got {
		got[i] = ref[i] + float32(r.NormFloat64()*0.01)
	}
	s, w := Compare(ref, got), refStats(ref, got)
	// Summation order differs (4 or 8 lanes vs sequential): relative 1e-12
	// is far above float64 rounding over 10^4 terms (~10^4·2^-53 ≈ 1e-12
	// worst case, typically much less) and far below any real difference
	// (TestSumPairsPaths bounds the sums themselves).
	if s.N != w.N || s.MaxAbs != w.MaxAbs || !near(s.SQNRdB, w.SQNRdB, 1e-11) || !near(s.Cosine, w.Cosine, 1e-12) || !near(s.RMSE, w.RMSE, 1e-11) {
		t.Errorf("Compare = %+v, want %+v", s, w)
	}
	// 0.01 noise on unit variance: SQNR ≈ 40 dB
	if s.SQNRdB < 39.5 || s.SQNRdB > 40.5 {
		t.Errorf("SQNR %v, want ≈ 40 dB", s.SQNRdB)
	}

	exact := Compare(ref, ref)
	if !math.IsInf(exact.SQNRdB, 1) || exact.Cosine != 1 || exact.MaxAbs != 0 || exact.RMSE != 0 {
		t.Errorf("exact = %+v", exact)
	}
	zero := make([]float32, 8)
	if s := Compare(zero, zero); !math.IsInf(s.SQNRdB, 1) || s.Cosine != 1 {
		t.Errorf("zeros = %+v", s)
	}
	if s := Compare(zero, ref[:8]); !math.IsInf(s.SQNRdB, -1) || s.Cosine != 0 || s.Finite().SQNRdB != -SQNRMaxDB {
		t.Errorf("zero ref = %+v", s)
	}
	if s := Compare(nil, nil); s.N != 0 || s.RMSE != 0 || !math.IsInf(s.SQNRdB, 1) {
		t.Errorf("empty = %+v", s)
	}
	neg := make([]float32, 8)
	for i := range neg {
		neg[i] = -ref[i]
	}
	if s := Compare(ref[:8], neg); s.Cosine != -1 {
		t.Errorf("negated: cosine %v, want -1", s.Cosine)
	}
}

func TestCompareNonFinite(t *testing.T) { bothPaths(t, testCompareNonFinite) }

func testCompareNonFinite(t *testing.T) {
	ref := []float32{1, 2, 3, float32(math.NaN()), 5, 70000, 7}
	got := []float32{1, 2, 3.5, 4, 5, float32(math.Inf(1)), 7}
	s := Compare(ref, got)
	if s.N != 5 || s.NonFinite != 2 || s.MaxAbs != 0.5 {
		t.Errorf("%+v: want N 5, NonFinite 2, MaxAbs 0.5", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	var back ErrorStats
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("json round trip %s → %+v, %v", b, back, err)
	}
	if _, err := json.Marshal(Compare(ref[:3], ref[:3])); err == nil {
		t.Error("an infinite SQNR encoded; Finite would be pointless")
	}
	if b, err := json.Marshal(Compare(ref[:3], ref[:3]).Finite()); err != nil {
		t.Errorf("exact stats do not encode: %v", err)
	} else if want := `{"n":3,"sqnr_db":999,"cosine":1,"max_abs":0,"rmse":0,"non_finite":0}`; string(b) != want {
		t.Errorf("json %s, want %s", b, want)
	}
}

// TestMergeContract checks the determinism contract: chunk accumulators
// merged in chunk order give the same bits however the chunks were
// scheduled, and agree with one pass to float64 rounding.
func TestMergeContract(t *testing.T) { bothPaths(t, testMergeContract) }

func testMergeContract(t *testing.T) {
	r := newRand(12)
	n := 3*StatsChunk + 1234
	ref := normals(r, n, 1)
	got := make([]float32, n)
	for i := range got {
		got[i] = ref[i] * (1 + float32(r.NormFloat64()*1e-3))
	}
	chunks := make([]ErrorAcc, (n+StatsChunk-1)/StatsChunk)
	// fill in reverse, as a thread pool might
	for c := len(chunks) - 1; c >= 0; c-- {
		lo, hi := c*StatsChunk, min((c+1)*StatsChunk, n)
		chunks[c].Add(ref[lo:hi], got[lo:hi])
	}
	var a, b ErrorAcc
	for c := range chunks {
		a.Merge(&chunks[c])
	}
	for c := 0; c < len(chunks); c++ {
		lo, hi := c*StatsChunk, min((c+1)*StatsChunk, n)
		var one ErrorAcc
		one.Add(ref[lo:hi], got[lo:hi])
		b.Merge(&one)
	}
	if a.Stats() != b.Stats() {
		t.Errorf("same chunks, different stats: %+v vs %+v", a.Stats(), b.Stats())
	}
	whole := Compare(ref, got)
	if s := a.Stats(); s.N != whole.N || !near(s.SQNRdB, whole.SQNRdB, 1e-11) || !near(s.Cosine, whole.Cosine, 1e-12) {
		t.Errorf("chunked %+v vs whole %+v", s, whole)
	}
}

func TestErrorAccPanicsOnLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	var a ErrorAcc
	a.Add(make([]float32, 2), make([]float32, 3))
}
