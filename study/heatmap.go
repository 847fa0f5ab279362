package study

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/vg"

	"github.com/quantpack/quantpack/internal/heatmap"
)

// Heatmap geometry: the width is fixed and each model adds a row, so the
// PNG's pixel size is a function of the model count (HeatmapSize). The
// colour legend takes a strip on the right.
const (
	heatmapWidth  = 7 * vg.Inch
	heatmapBase   = 1.6 * vg.Inch
	heatmapPerRow = 0.38 * vg.Inch
	legendWidth   = 0.9 * vg.Inch
)

// HeatmapSize returns the pixel dimensions of a heatmap with n models.
func HeatmapSize(n int) (w, h int) {
	return heatmap.Size(heatmapWidth, heatmapBase+vg.Length(n)*heatmapPerRow)
}

// HeatmapLayout is what every heatmap shows, in order: the rows top to
// bottom (the models, in the tables' order) and the columns left to right
// (the precisions).
func HeatmapLayout(r *Report) (rows, cols []string) {
	for _, m := range r.Models {
		rows = append(rows, m.Name)
	}
	return rows, slices.Clone(r.Settings.Precisions)
}

// grid is models × precisions of one metric. Row 0 is drawn at the bottom
// (gonum's y axis points up), so the grid holds the models in reverse
// table order and the first model is the top row, as in the tables.
type grid struct {
	models, precs []string
	v             [][]float64 // [row][precision], NaN when missing
}

func (g grid) Dims() (c, r int)   { return len(g.precs), len(g.models) }
func (g grid) Z(c, r int) float64 { return g.v[r][c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

func metricGrid(r *Report, f func(*Cell) (float64, bool)) grid {
	rows, cols := HeatmapLayout(r)
	g := grid{precs: cols}
	for i := len(rows) - 1; i >= 0; i-- {
		g.models = append(g.models, rows[i])
		row := make([]float64, len(g.precs))
		for j := range row {
			row[j] = math.NaN()
		}
		for _, c := range r.Cells {
			if c.Model != rows[i] {
				continue
			}
			for j, p := range g.precs {
				if p == c.Precision {
					if v, ok := f(c); ok {
						row[j] = v
					}
				}
			}
		}
		g.v = append(g.v, row)
	}
	return g
}

// scale is how a heatmap colours its values. Every map is centred on the
// FP32 value (1.0: same speed, same size, full agreement), which is drawn
// white; colours say better (blue) or worse (red) than FP32, and the
// legend on the right maps colours to values. Ratios (speedup, size) are
// coloured on a log scale, so 2× faster and 2× slower are equally strong.
type scale struct {
	log          bool
	higherBetter bool
}

func (s scale) value(v float64) float64 {
	if s.log {
		return math.Log2(v)
	}
	return v - 1
}

func (s scale) inverse(x float64) float64 {
	if s.log {
		return math.Exp2(x)
	}
	return x + 1
}

// heatmapSpec is one of the three maps.
type heatmapSpec struct {
	file, title, format string
	scale               scale
	f                   func(*Cell) (float64, bool)
}

func heatmapSpecs(r *Report) []heatmapSpec {
	return []heatmapSpec{
		{FileSpeedup, fmt.Sprintf("Speedup over FP32 (p50, batch %d)", r.Settings.BatchSizes[0]), "%.2f×", scale{log: true, higherBetter: true},
			func(c *Cell) (float64, bool) { return c.Speedup, c.Speedup > 0 }},
		{FileSize, "ONNX size relative to FP32", "%.2f", scale{log: true},
			func(c *Cell) (float64, bool) { return c.SizeRatio, c.SizeRatio > 0 }},
		{FileAgree, "Top-1 agreement with FP32 (cosine for embeddings)", "%.3f", scale{higherBetter: true}, func(c *Cell) (float64, bool) {
			if c.Top1 != nil {
				return *c.Top1, true
			}
			return c.CosineMean, true
		}},
	}
}

func writeHeatmaps(dir string, r *Report) error {
	for _, m := range heatmapSpecs(r) {
		if err := writeHeatmap(filepath.Join(dir, m.file), m, metricGrid(r, m.f)); err != nil {
			return err
		}
	}
	return nil
}

// colorRange is the symmetric range of scaled values around 0 (FP32).
func colorRange(s scale, g grid) float64 {
	d := 0.0
	for _, row := range g.v {
		for _, v := range row {
			if !math.IsNaN(v) && !math.IsInf(s.value(v), 0) {
				d = math.Max(d, math.Abs(s.value(v)))
			}
		}
	}
	// At least ±5% (log2 1.05 ≈ 0.07), so that an all-FP32-like map is
	// white rather than saturated noise.
	return math.Max(d, 0.07)
}

// colorMap is the map's colours over scaled values [-d, d]: blue for
// better than FP32, red for worse, the palette's neutral middle at FP32.
func colorMap(spec heatmapSpec, g grid) (palette.ColorMap, float64) {
	d := colorRange(spec.scale, g)
	var cm palette.ColorMap = moreland.SmoothBlueRed() // low blue, high red
	if spec.scale.higherBetter {
		cm = palette.Reverse(cm)
	}
	cm.SetMin(-d)
	cm.SetMax(d)
	return cm, d
}

func writeHeatmap(path string, spec heatmapSpec, g grid) error {
	cm, _ := colorMap(spec, g)
	m := heatmap.Map{Title: spec.title, Cols: g.precs, Colors: cm, LegendTitle: "vs FP32",
		LegendTicks: heatmap.Ticks(func(x float64) string { return fmt.Sprintf(spec.format, spec.scale.inverse(x)) }),
		Width:       heatmapWidth, Height: heatmapBase + vg.Length(len(g.models))*heatmapPerRow, LegendWidth: legendWidth}
	// g holds the models bottom row first; the map wants them top first.
	for r := len(g.models) - 1; r >= 0; r-- {
		m.Rows = append(m.Rows, g.models[r])
		vals, labels := make([]float64, len(g.precs)), make([]string, len(g.precs))
		for c, v := range g.v[r] {
			vals[c] = math.NaN()
			if !math.IsNaN(v) {
				vals[c] = spec.scale.value(v)
				labels[c] = fmt.Sprintf(spec.format, v)
			}
		}
		m.Values, m.Labels = append(m.Values, vals), append(m.Labels, labels)
	}
	return heatmap.Write(path, m)
}
