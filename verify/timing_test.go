package verify

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

func TestLatencyStats(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[len(d)-1-i] = time.Duration(i+1) * time.Millisecond // unsorted input
	}
	s := NewLatencyStats(d)
	// Nearest rank over 1..100 ms: Pk = k ms. The sample variance of 1..n is
	// n(n+1)/12.
	want := LatencyStats{Runs: 100, P50: 50, P90: 90, P99: 99, Mean: 50.5, Min: 1, Max: 100, Stddev: math.Sqrt(100 * 101 / 12.0)}
	if !near(s.Stddev, want.Stddev, 1e-9) {
		t.Errorf("stddev %v, want %v", s.Stddev, want.Stddev)
	}
	s.Stddev = want.Stddev
	if s != want {
		t.Errorf("%+v\nwant %+v", s, want)
	}
	if d[0] != 100*time.Millisecond {
		t.Error("input modified")
	}
	small := NewLatencyStats([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	if small.P50 != 2 || small.P90 != 3 || small.P99 != 3 {
		t.Errorf("n=3: %+v", small)
	}
	one := NewLatencyStats([]time.Duration{4 * time.Millisecond})
	if one.P50 != 4 || one.P99 != 4 || one.Stddev != 0 {
		t.Errorf("n=1: %+v", one)
	}
	if got := one.Throughput(8); got != 2000 {
		t.Errorf("throughput %v, want 8 / 4 ms = 2000/s", got)
	}
	if (LatencyStats{}).Throughput(8) != 0 || NewLatencyStats(nil).Runs != 0 {
		t.Error("empty stats")
	}
}

func TestMeasure(t *testing.T) {
	calls := 0
	d, err := Measure(context.Background(), func() error {
		calls++
		time.Sleep(time.Millisecond)
		return nil
	}, 3, 5)
	if err != nil || len(d) != 5 || calls != 8 {
		t.Fatalf("durations %v, calls %d, err %v", d, calls, err)
	}
	for _, v := range d {
		if v < time.Millisecond {
			t.Errorf("duration %v shorter than the sleep", v)
		}
	}
	boom := errors.New("boom")
	calls = 0
	d, err = Measure(context.Background(), func() error {
		calls++
		if calls == 4 {
			return boom
		}
		return nil
	}, 1, 10)
	if !errors.Is(err, boom) || len(d) != 2 {
		t.Errorf("error run: %d durations, %v", len(d), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	d, err = Measure(ctx, func() error {
		calls++
		if calls == 3 {
			cancel()
		}
		return nil
	}, 0, 10)
	if !errors.Is(err, context.Canceled) || len(d) != 3 {
		t.Errorf("cancel: %d durations, %v", len(d), err)
	}
	if _, err := Measure(context.Background(), func() error { return nil }, 0, 0); err == nil {
		t.Error("zero iterations accepted")
	}
}

// TestMeasureAllocations: the timing loop allocates its slice once and
// nothing per iteration, whatever the count.
func TestMeasureAllocations(t *testing.T) {
	fn := func() error { return nil }
	ctx := context.Background()
	for _, iters := range []int{1, 1000} {
		allocs := testing.AllocsPerRun(10, func() { Measure(ctx, fn, 2, iters) })
		if allocs != 1 {
			t.Errorf("%d iterations: %v allocations, want 1", iters, allocs)
		}
	}
}
