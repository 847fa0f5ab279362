package verify

import (
	"fmt"
	"math"

	"github.com/quantpack/quantpack/internal/fault"
)

// ErrGateValue is a gate limit that cannot be meant: NaN or infinite, a
// cosine outside [-1, 1], a negative or zero limit where only positive ones
// make sense. A NaN gate used to pass every run; a negative minimum passed
// trivially.
var ErrGateValue = fault.New(fault.Usage, "verify: invalid gate value")

// Validate checks every set gate's value; flags are named as on the command
// line.
func (g Gates) Validate() error {
	checks := []struct {
		flag   string
		v      *float64
		lo, hi float64
		loOpen bool // lo itself is not allowed
	}{
		{"--max-top1-drop", g.MaxTop1Drop, 0, 100, false},
		{"--min-cosine", g.MinCosine, -1, 1, false},
		{"--max-latency-ms", g.MaxLatencyMs, 0, math.MaxFloat64, true},
		{"--min-speedup", g.MinSpeedup, 0, math.MaxFloat64, true},
		{"--max-size-ratio", g.MaxSizeRatio, 0, math.MaxFloat64, true},
	}
	for _, c := range checks {
		if c.v == nil {
			continue
		}
		v := *c.v
		bad := math.IsNaN(v) || math.IsInf(v, 0) || v < c.lo || v > c.hi || (c.loOpen && v == c.lo)
		if bad {
			want := fmt.Sprintf("from %g to %g", c.lo, c.hi)
			if c.loOpen {
				want = fmt.Sprintf("a finite number > %g", c.lo)
			}
			return fmt.Errorf("%w: %s %g: want %s", ErrGateValue, c.flag, v, want)
		}
	}
	return nil
}
