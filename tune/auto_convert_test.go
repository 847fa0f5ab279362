package tune

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
)

// TestAutoConvertConfirms: --precision auto for convert writes a
// safetensors artifact and confirms it through the artifact's own export
// graph, whose weights go to a temporary external data file (as they must
// past 2 GiB). That graph holds the same weights as the search's variant
// graph, so the confirming run repeats the search's figures (1e-9: float64
// means of the same float32 logits) and the temporary data is gone
// afterwards.
func TestAutoConvertConfirms(t *testing.T) {
	requireORT(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(t.TempDir(), "auto")
	opt := autoOpts(t, out, Target{MinCosine: ptr(0.99)}, convert.Int8, convert.Int4)
	opt.Export = false
	res, err := Auto(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Record
	if res.Artifact == nil || !rec.Reached || rec.Confirmed == nil {
		t.Fatalf("artifact %v, record %+v", res.Artifact != nil, rec)
	}
	if math.Abs(rec.Confirmed.CosineMean-rec.Measured.CosineMean) > 1e-9 || math.Abs(rec.Confirmed.KLMean-rec.Measured.KLMean) > 1e-9 {
		t.Errorf("confirmed %+v, measured %+v", *rec.Confirmed, rec.Measured)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
