package verify

import (
	"errors"
	"math"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// Issue 17 case 14: gate values that cannot be meant are usage errors.
func TestGatesValidate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	bad := []Gates{
		{MinCosine: f(math.NaN())}, {MinCosine: f(1.5)}, {MinCosine: f(-2)},
		{MaxTop1Drop: f(-1)}, {MaxTop1Drop: f(101)}, {MaxTop1Drop: f(math.Inf(1))},
		{MaxLatencyMs: f(0)}, {MaxLatencyMs: f(-5)}, {MinSpeedup: f(-1)}, {MinSpeedup: f(math.NaN())},
		{MaxSizeRatio: f(0)}, {MaxSizeRatio: f(math.Inf(1))},
	}
	for _, g := range bad {
		if err := g.Validate(); !errors.Is(err, ErrGateValue) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("%+v: %v, want ErrGateValue (usage)", g, err)
		}
	}
	good := Gates{MinCosine: f(0.99), MaxTop1Drop: f(0), MaxLatencyMs: f(12.5), MinSpeedup: f(1.2), MaxSizeRatio: f(0.3)}
	if err := good.Validate(); err != nil || (Gates{}).Validate() != nil {
		t.Errorf("valid gates refused: %v", err)
	}
}
