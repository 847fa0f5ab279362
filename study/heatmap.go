package study

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// Heatmap geometry: the width is fixed and each model adds a row, so the
// PNG's pixel size is a function of the model count (HeatmapSize). The
// colour legend takes a strip on the right.
const (
	heatmapDPI    = 96
	heatmapWidth  = 7 * vg.Inch
	heatmapBase   = 1.6 * vg.Inch
	heatmapPerRow = 0.38 * vg.Inch
	legendWidth   = 0.9 * vg.Inch
)

// HeatmapSize returns the pixel dimensions of a heatmap with n models.
func HeatmapSize(n int) (w, h int) {
	px := func(l vg.Length) int { return int(math.Ceil(float64(l / vg.Inch * heatmapDPI))) }
	return px(heatmapWidth), px(heatmapBase + vg.Length(n)*heatmapPerRow)
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
	cm, d := colorMap(spec, g)
	scaled := grid{models: g.models, precs: g.precs}
	for _, row := range g.v {
		out := make([]float64, len(row))
		for i, v := range row {
			out[i] = math.NaN()
			if !math.IsNaN(v) {
				out[i] = math.Max(-d, math.Min(d, spec.scale.value(v)))
			}
		}
		scaled.v = append(scaled.v, out)
	}
	p := plot.New()
	p.Title.Text = spec.title
	hm := plotter.NewHeatMap(scaled, discrete(cm, -d, d, heatmapColors))
	hm.Min, hm.Max = -d, d
	hm.NaN = drawTransparent{}
	p.Add(hm)
	var xys plotter.XYs
	var labels []string
	for r, row := range g.v {
		for c, v := range row {
			if math.IsNaN(v) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(r)})
			labels = append(labels, fmt.Sprintf(spec.format, v))
		}
	}
	if len(xys) > 0 {
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XCenter
			l.TextStyle[i].YAlign = draw.YCenter
		}
		p.Add(l)
	}
	p.NominalX(g.precs...)
	p.NominalY(g.models...)
	p.X.Padding, p.Y.Padding = 0, 0

	legend := plot.New()
	legend.Title.Text = "vs FP32"
	legend.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	legend.HideX()
	legend.Y.Padding = 0
	legend.Y.Tick.Marker = legendTicks{spec}

	w, h := heatmapWidth, heatmapBase+vg.Length(len(g.models))*heatmapPerRow
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(heatmapDPI))
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, w-legendWidth, 0, 0.35*vg.Inch, -0.1*vg.Inch))
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		return err
	}
	return f.Commit()
}

// heatmapColors is how many colours a heatmap's cells are binned into
// (odd, so that FP32's value has a bin of its own in the middle).
const heatmapColors = 255

// colorList is a palette.Palette.
type colorList []color.Color

func (c colorList) Colors() []color.Color { return c }

// discrete samples cm at n evenly spaced values over [lo, hi]. (gonum's
// palette.Reverse(cm).Palette(n) leaves the middle colour nil for odd n,
// which drew FP32's own cells transparent.)
func discrete(cm palette.ColorMap, lo, hi float64, n int) palette.Palette {
	out := make(colorList, n)
	for i := range out {
		v := lo + (hi-lo)*float64(i)/float64(n-1)
		c, err := cm.At(math.Max(cm.Min(), math.Min(cm.Max(), v)))
		if err != nil {
			c = color.Transparent
		}
		out[i] = c
	}
	return out
}

// legendTicks labels the colour bar with values, not scaled values: the
// ends, FP32's 1.0 in the middle, and halfway points.
type legendTicks struct{ spec heatmapSpec }

func (t legendTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, x := range []float64{lo, lo / 2, 0, hi / 2, hi} {
		out = append(out, plot.Tick{Value: x, Label: fmt.Sprintf(t.spec.format, t.spec.scale.inverse(x))})
	}
	return out
}

// drawTransparent marks missing cells.
type drawTransparent struct{}

func (drawTransparent) RGBA() (r, g, b, a uint32) { return 0, 0, 0, 0 }
