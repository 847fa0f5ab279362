package study

import (
	"fmt"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// Heatmap geometry: the width is fixed and each model adds a row, so the
// PNG's pixel size is a function of the model count (HeatmapSize).
const (
	heatmapDPI    = 96
	heatmapWidth  = 7 * vg.Inch
	heatmapBase   = 1.6 * vg.Inch
	heatmapPerRow = 0.38 * vg.Inch
)

// HeatmapSize returns the pixel dimensions of a heatmap with n models.
func HeatmapSize(n int) (w, h int) {
	px := func(l vg.Length) int { return int(math.Ceil(float64(l / vg.Inch * heatmapDPI))) }
	return px(heatmapWidth), px(heatmapBase + vg.Length(n)*heatmapPerRow)
}

// grid is models × precisions of one metric.
type grid struct {
	models, precs []string
	v             [][]float64 // [model][precision], NaN when missing
}

func (g grid) Dims() (c, r int)   { return len(g.precs), len(g.models) }
func (g grid) Z(c, r int) float64 { return g.v[r][c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

func metricGrid(r *Report, f func(*Cell) (float64, bool)) grid {
	g := grid{precs: r.Settings.Precisions}
	for _, m := range r.Models {
		g.models = append(g.models, m.Name)
		row := make([]float64, len(g.precs))
		for i := range row {
			row[i] = math.NaN()
		}
		for _, c := range r.Cells {
			if c.Model != m.Name {
				continue
			}
			for i, p := range g.precs {
				if p == c.Precision {
					if v, ok := f(c); ok {
						row[i] = v
					}
				}
			}
		}
		g.v = append(g.v, row)
	}
	return g
}

func writeHeatmaps(dir string, r *Report) error {
	maps := []struct {
		file, title, format string
		f                   func(*Cell) (float64, bool)
	}{
		{FileSpeedup, "Speedup over FP32 (p50, batch %d)", "%.2f×", func(c *Cell) (float64, bool) { return c.Speedup, c.Speedup > 0 }},
		{FileSize, "ONNX size relative to FP32", "%.2f", func(c *Cell) (float64, bool) { return c.SizeRatio, c.SizeRatio > 0 }},
		{FileAgree, "Top-1 agreement with FP32 (cosine for embeddings)", "%.3f", func(c *Cell) (float64, bool) {
			if c.Top1 != nil {
				return *c.Top1, true
			}
			return c.CosineMean, true
		}},
	}
	for _, m := range maps {
		title := m.title
		if m.file == FileSpeedup {
			title = fmt.Sprintf(m.title, r.Settings.BatchSizes[0])
		}
		if err := writeHeatmap(filepath.Join(dir, m.file), title, m.format, metricGrid(r, m.f)); err != nil {
			return err
		}
	}
	return nil
}

func writeHeatmap(path, title, format string, g grid) error {
	p := plot.New()
	p.Title.Text = title
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range g.v {
		for _, v := range row {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	}
	pal := moreland.SmoothBlueRed()
	pal.SetMin(lo)
	pal.SetMax(hi)
	hm := plotter.NewHeatMap(g, pal.Palette(255))
	hm.Min, hm.Max = lo, hi
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
			labels = append(labels, fmt.Sprintf(format, v))
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
	w, h := heatmapWidth, heatmapBase+vg.Length(len(g.models))*heatmapPerRow
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(heatmapDPI))
	p.Draw(draw.New(c))
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

// drawTransparent marks missing cells.
type drawTransparent struct{}

func (drawTransparent) RGBA() (r, g, b, a uint32) { return 0, 0, 0, 0 }
