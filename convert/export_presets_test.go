package convert

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// smallPresets export in every test run; the rest need QUANTPACK_BIG=1:
// synthesizing and exporting the 86M–632M-parameter presets takes minutes
// and gigabytes of disk on the 2-core CI machine.
var smallPresets = []string{"deit-tiny-patch16-224"}

// TestSynthPresetsExport synthesizes each ViT-family preset, exports it at
// fp32 and runs one batch of two in ONNX Runtime: outputs have the declared
// shapes and are finite, and the two images give different outputs.
func TestSynthPresetsExport(t *testing.T) {
	orttest.Require(t)
	big := os.Getenv("QUANTPACK_BIG") == "1"
	for _, p := range Presets() {
		a, err := LookupArch(p.Arch)
		if err != nil || a.Family == "mobilevit" {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			if !big && !slices.Contains(smallPresets, p.Name) {
				t.Skipf("%s (%s params): set QUANTPACK_BIG=1 to export the large presets", p.Name, p.Params)
			}
			dir := filepath.Join(t.TempDir(), "ckpt")
			if _, err := Synth(context.Background(), p.Name, dir, 1, 0); err != nil {
				t.Fatal(err)
			}
			out, m := exportTo(t, dir, ExportOptions{Precision: ExportFP32})
			os.RemoveAll(dir)
			in := m.Inputs[0]
			shape := append([]int64{2}, in.Shape[1:]...)
			x, _ := testInputs(make([]float32, shape[1]*shape[2]*shape[3]), append([]int64{1}, in.Shape[1:]...))
			x = x[len(x)/4*2:] // two of the synthetic images
			got := runONNX(t, out, x, shape)
			for _, o := range m.Outputs {
				g, ok := got[o.Name]
				if !ok {
					t.Fatalf("no output %q", o.Name)
				}
				want := append([]int64{2}, o.Shape[1:]...)
				if !slices.Equal(g.Shape, want) {
					t.Fatalf("%s shape %v, want %v", o.Name, g.Shape, want)
				}
				half := len(g.F32) / 2
				same := true
				for i, v := range g.F32 {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s[%d] = %v", o.Name, i, v)
					}
					if i < half && v != g.F32[half+i] {
						same = false
					}
				}
				if same {
					t.Errorf("%s: both images give the same output", o.Name)
				}
			}
			t.Logf("%s: %s, %d bytes, image %dx%d from %s", p.Name, m.Architecture, m.Sizes.TotalBytes, m.Image.Height, m.Image.Width, m.Image.From)
		})
	}
}
