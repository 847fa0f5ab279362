package study

import (
	"image/color"
	"math"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/heatmap"
	"github.com/quantpack/quantpack/internal/testenv"
)

// TestHeatmapColours: every map is white-ish at the FP32 value and blue for
// better, red for worse: faster, smaller and full agreement are good; FP32's
// own cells (speedup 1, size 1, agreement 1) are never painted hot.
func TestHeatmapColours(t *testing.T) {
	r := &Report{Settings: Settings{BatchSizes: []int{1}}}
	specs := heatmapSpecs(r)
	g := func(vals ...float64) grid { return grid{v: [][]float64{vals}} }
	rgb := func(c color.Color) (float64, float64, float64) {
		r, g, b, _ := c.RGBA()
		return float64(r >> 8), float64(g >> 8), float64(b >> 8)
	}
	for _, c := range []struct {
		spec          heatmapSpec
		grid          grid
		better, worse float64 // NaN: none
	}{
		{specs[0], g(1, 2, 0.5, 4.4), 2, 0.5},
		{specs[1], g(1, 0.25, 0.5), 0.25, math.NaN()},
		{specs[2], g(1, 0.9, 0.75), math.NaN(), 0.75},
	} {
		cm, _ := colorMap(c.spec, c.grid)
		at := func(v float64) color.Color {
			col, err := cm.At(c.spec.scale.value(v))
			if err != nil {
				t.Fatalf("%s: At(%v): %v", c.spec.file, v, err)
			}
			return col
		}
		r, gg, b := rgb(at(1))
		if math.Abs(r-b) > 8 || math.Abs(r-gg) > 8 || r < 180 {
			t.Errorf("%s: FP32's value is drawn (%v,%v,%v), want the neutral light middle", c.spec.file, r, gg, b)
		}
		if !math.IsNaN(c.better) {
			if r, _, b := rgb(at(c.better)); b <= r {
				t.Errorf("%s: better value %v drawn (r %v, b %v), want blue", c.spec.file, c.better, r, b)
			}
		}
		if !math.IsNaN(c.worse) {
			if r, _, b := rgb(at(c.worse)); r <= b {
				t.Errorf("%s: worse value %v drawn (r %v, b %v), want red", c.spec.file, c.worse, r, b)
			}
		}
	}
	// Speedups are symmetric in log: 2× and 0.5× sit at mirror positions
	// of the colour range (within rounding of log2).
	if v := specs[0].scale.value(2) + specs[0].scale.value(0.5); math.Abs(v) > 1e-12 {
		t.Errorf("2× and 0.5× are not symmetric around FP32: %v", v)
	}
}

// TestHeatmapRowOrder: the first model of the tables is the top row (the
// highest y of gonum's grid).
func TestHeatmapRowOrder(t *testing.T) {
	r := &Report{Settings: Settings{Precisions: []string{"fp32", "int8"}, BatchSizes: []int{1}},
		Models: []ModelInfo{{Name: "first"}, {Name: "second"}, {Name: "third"}},
		Cells:  []*Cell{{Model: "first", Precision: "int8", Speedup: 3}}}
	g := metricGrid(r, func(c *Cell) (float64, bool) { return c.Speedup, true })
	top := len(g.models) - 1
	if g.models[top] != "first" || g.models[0] != "third" || g.Z(1, top) != 3 {
		t.Fatalf("rows bottom to top %v, first's int8 = %v", g.models, g.Z(1, top))
	}
	rows, cols := HeatmapLayout(r)
	if rows[0] != "first" || cols[1] != "int8" {
		t.Fatalf("layout %v × %v", rows, cols)
	}
}

// TestHeatmapPalette: every bin of every map's palette has a colour, and
// the middle bin (FP32's value) is the neutral one.
func TestHeatmapPalette(t *testing.T) {
	r := &Report{Settings: Settings{BatchSizes: []int{1}}}
	for _, spec := range heatmapSpecs(r) {
		g := grid{v: [][]float64{{1, 0.5, 2}}}
		cm, d := colorMap(spec, g)
		cols := heatmap.Discrete(cm, -d, d, heatmap.Bins).Colors()
		for i, c := range cols {
			if c == nil {
				t.Fatalf("%s: bin %d has no colour", spec.file, i)
			}
			if _, _, _, a := c.RGBA(); a == 0 {
				t.Fatalf("%s: bin %d is transparent", spec.file, i)
			}
		}
		mid, _ := cm.At(0)
		if cols[heatmap.Bins/2] != mid {
			t.Errorf("%s: middle bin %v, FP32's colour %v", spec.file, cols[heatmap.Bins/2], mid)
		}
	}
}

// TestHeatmapPaintsFP32: a rendered speedup map paints FP32's cell (1.0×)
// in the neutral colour over a cell's area, not leaves it blank.
func TestHeatmapPaintsFP32(t *testing.T) {
	r := &Report{Settings: Settings{BatchSizes: []int{1}, Precisions: []string{"fp32", "int8"}}, Models: []ModelInfo{{Name: "m"}},
		Cells: []*Cell{{Model: "m", Precision: "fp32", Speedup: 1}, {Model: "m", Precision: "int8", Speedup: 2}}}
	spec := heatmapSpecs(r)[0]
	g := metricGrid(r, spec.f)
	path := filepath.Join(t.TempDir(), "h.png")
	if err := writeHeatmap(path, spec, g); err != nil {
		t.Fatal(err)
	}
	img := testenv.ReadPNG(t, path)
	cm, _ := colorMap(spec, g)
	mid, _ := cm.At(0)
	mr, mg, mb, _ := mid.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r>>8 == mr>>8 && g>>8 == mg>>8 && bb>>8 == mb>>8 {
				n++
			}
		}
	}
	// A cell is about a fifth of a 672-pixel-wide plot by a 0.38-inch row:
	// thousands of pixels; the colour bar's middle adds a few.
	if n < 2000 {
		t.Fatalf("%d pixels in FP32's neutral colour: its cell was not painted", n)
	}
}
