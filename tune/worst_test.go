package tune

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
)

// TestWeightErrorsFollowsTheMix: for a mixed export (one layer int8, the
// rest int4) the reconversion honours the mix — that layer is int8 and,
// with 4 more bits, the most faithful (int8 rowwise is about 24 dB above
// int4 blocks on these weights; requiring only "above every int4 layer"
// keeps the check independent of the exact figures) — and the list is
// ordered by SQNR.
func TestWeightErrorsFollowsTheMix(t *testing.T) {
	model, _ := trained(t)
	const first = "vit.encoder.layer.0.attention.attention.query.weight"
	out := filepath.Join(t.TempDir(), "mix")
	_, err := convert.Export(context.Background(), model, out, convert.ExportOptions{Precision: convert.ExportInt4,
		Convert: convert.Options{Overrides: map[string]convert.Precision{first: convert.Int8}}})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := WeightErrors(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 18 {
		t.Fatalf("%d layers, want 18", len(ls))
	}
	last := ls[len(ls)-1]
	if last.Name != first || last.Scheme != convert.SchemeInt8 {
		t.Errorf("most faithful layer %s (%s), want %s at int8", last.Name, last.Scheme, first)
	}
	for i := 1; i < len(ls); i++ {
		if ls[i].SQNRdB < ls[i-1].SQNRdB {
			t.Errorf("not sorted at %d: %g < %g", i, ls[i].SQNRdB, ls[i-1].SQNRdB)
		}
		if ls[i-1].Scheme != convert.SchemeInt4 {
			t.Errorf("%s: scheme %s, want int4-block", ls[i-1].Name, ls[i-1].Scheme)
		}
	}
}
