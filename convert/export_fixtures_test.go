package convert

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestExportMatchesTransformers exports every reference checkpoint (except
// MobileViT, built elsewhere) at fp32, runs it in ONNX Runtime on the
// fixture's inputs and compares with the outputs the transformers 4.47
// modeling code produced. The bar is the fixture's: cosine ≥ 0.99999 and
// max-abs ≤ 1e-4; float32 vs float64 forwards of these models already differ
// by up to 3e-6, so anything near the bar is a graph bug, not rounding.
// Both graph forms (fused and plain) must pass.
func TestExportMatchesTransformers(t *testing.T) {
	fx := fixtures(t)
	orttest.Require(t)
	for _, name := range referenceModels {
		if name == "mobilevit" {
			continue
		}
		for _, plain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/plain=%v", name, plain), func(t *testing.T) {
				dir := filepath.Join(fx, "reference", name)
				ref := readRef(t, dir)
				for _, c := range ref.Cases {
					// The native case takes its size from config.json; only a
					// different input size is passed as --image-size.
					size := int(c.Input.Shape[3])
					cfg, err := LoadConfig(dir)
					if err != nil {
						t.Fatal(err)
					}
					if size == cfg.Int("image_size", 0) {
						size = 0
					}
					out, m := exportTo(t, dir, ExportOptions{Precision: ExportFP32, ImageSize: size, Plain: plain})
					got := runONNX(t, out, readBin(t, filepath.Join(dir, c.Input.File)), c.Input.Shape)
					if len(got) != len(c.Outputs) {
						t.Errorf("case %s: outputs %v, reference has %d (ops %v)", c.Name, slices.Sorted(maps.Keys(got)), len(c.Outputs), sortedOps(m.Ops))
					}
					for oname, o := range c.Outputs {
						g, ok := got[oname]
						if !ok {
							t.Errorf("case %s: no output %q (have %v)", c.Name, oname, slices.Sorted(maps.Keys(got)))
							continue
						}
						if !slices.Equal(g.Shape, o.Shape) {
							t.Errorf("case %s: %s shape %v, want %v", c.Name, oname, g.Shape, o.Shape)
							continue
						}
						a := compare(g.F32, readBin(t, filepath.Join(dir, o.File)))
						t.Logf("case %s %s: cosine %.9f max-abs %.3g", c.Name, oname, a.Cosine, a.MaxAbs)
						if a.Cosine < 0.99999 || a.MaxAbs > 1e-4 {
							t.Errorf("case %s: %s cosine %.9f max-abs %.3g (want ≥ 0.99999, ≤ 1e-4)", c.Name, oname, a.Cosine, a.MaxAbs)
						}
					}
				}
			})
		}
	}
}
