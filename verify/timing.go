package verify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// LatencyStats summarises timed runs, in milliseconds.
//
// Percentiles use the nearest-rank rule: Pk is the smallest run that at
// least k% of runs are no slower than (sorted[ceil(k/100·N)−1]). Every
// figure is a latency that actually occurred, and with few runs P99 is the
// slowest run rather than an interpolation beyond the data. Stddev is the
// sample standard deviation (N−1); 0 for one run.
type LatencyStats struct {
	Runs   int     `json:"runs"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Stddev float64 `json:"stddev"`
}

// NewLatencyStats computes the statistics of d (which it does not modify).
func NewLatencyStats(d []time.Duration) LatencyStats {
	n := len(d)
	if n == 0 {
		return LatencyStats{}
	}
	ms := make([]float64, n)
	for i, v := range d {
		ms[i] = float64(v) / float64(time.Millisecond)
	}
	slices.Sort(ms)
	var sum float64
	for _, v := range ms {
		sum += v
	}
	mean := sum / float64(n)
	var ss float64
	for _, v := range ms {
		ss += (v - mean) * (v - mean)
	}
	s := LatencyStats{
		Runs: n, Mean: mean, Min: ms[0], Max: ms[n-1],
		P50: nearestRank(ms, 50), P90: nearestRank(ms, 90), P99: nearestRank(ms, 99),
	}
	if n > 1 {
		s.Stddev = math.Sqrt(ss / float64(n-1))
	}
	return s
}

// nearestRank is the nearest-rank percentile of sorted values.
func nearestRank(sorted []float64, pct int) float64 {
	rank := (pct*len(sorted) + 99) / 100 // ceil(pct/100 · N) in integers
	return sorted[max(rank, 1)-1]
}

// Throughput is samples per second at the median latency: batch / P50.
// 0 when there were no runs.
func (s LatencyStats) Throughput(batch int) float64 {
	if s.P50 <= 0 {
		return 0
	}
	return float64(batch) / (s.P50 / 1000)
}

// Measure calls fn warmup times untimed, then iters times, timing each call
// alone: the clock is read just before and just after fn, the durations go
// into a slice allocated before the loop, and the context check and error
// handling happen outside the timed region. It returns the durations of the
// completed timed calls; on an error or cancellation, those before it with
// the error.
func Measure(ctx context.Context, fn func() error, warmup, iters int) ([]time.Duration, error) {
	if warmup < 0 || iters < 1 {
		return nil, fmt.Errorf("%w: warmup %d, iters %d", ErrShape, warmup, iters)
	}
	for i := range warmup {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := fn(); err != nil {
			return nil, fmt.Errorf("warm-up run %d: %w", i, err)
		}
	}
	durs := make([]time.Duration, iters)
	for i := range durs {
		if err := ctx.Err(); err != nil {
			return durs[:i], err
		}
		start := time.Now()
		err := fn()
		durs[i] = time.Since(start)
		if err != nil {
			return durs[:i], fmt.Errorf("timed run %d: %w", i, err)
		}
	}
	return durs, nil
}
