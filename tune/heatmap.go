package tune

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// Heatmap geometry: fixed width, one row per layer.
const (
	heatmapDPI    = 96
	heatmapWidth  = 9 * vg.Inch
	heatmapBase   = 1.4 * vg.Inch
	heatmapPerRow = 0.22 * vg.Inch
)

// column is one metric of the heatmap; value is the layer's raw figure
// (shown in the cell), and larger means more sensitive.
type column struct {
	name   string
	format string
	value  func(m Metrics) float64
}

func heatmapColumns(r *SensitivityReport) []column {
	cols := []column{
		{"KL mean", "%.2g", func(m Metrics) float64 { return m.KLMean }},
		{"1 − cos mean", "%.2g", func(m Metrics) float64 { return 1 - m.CosineMean }},
		{"1 − cos min", "%.2g", func(m Metrics) float64 { return 1 - m.CosineMin }},
		{"top-1 disagree", "%.3f", func(m Metrics) float64 { return 1 - m.Top1Agreement }},
	}
	if r.BaselineTop1 != nil {
		b := *r.BaselineTop1
		cols = append(cols, column{"top-1 drop (pt)", "%.1f", func(m Metrics) float64 {
			if m.Top1 == nil {
				return math.NaN()
			}
			return 100 * (b - *m.Top1)
		}})
	}
	return cols
}

// sensGrid is layers × metrics; Z is each column scaled to [0, 1] so one
// palette serves metrics of different units.
type sensGrid struct {
	raw, norm [][]float64 // [layer][column]
	rows      int
}

func (g sensGrid) Dims() (c, r int) { return len(g.norm[0]), g.rows }

// Z puts layer 0 at the top row.
func (g sensGrid) Z(c, r int) float64 { return g.norm[g.rows-1-r][c] }
func (g sensGrid) X(c int) float64    { return float64(c) }
func (g sensGrid) Y(r int) float64    { return float64(r) }

func writeHeatmap(path string, r *SensitivityReport) error {
	cols := heatmapColumns(r)
	n := len(r.Layers)
	if n == 0 {
		return fmt.Errorf("tune: no layers to plot")
	}
	g := sensGrid{rows: n}
	for _, l := range r.Layers {
		row := make([]float64, len(cols))
		for c, col := range cols {
			row[c] = col.value(l.Alone)
		}
		g.raw = append(g.raw, row)
		g.norm = append(g.norm, make([]float64, len(cols)))
	}
	for c := range cols {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, row := range g.raw {
			if v := row[c]; !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		for i, row := range g.raw {
			switch {
			case math.IsNaN(row[c]):
				g.norm[i][c] = math.NaN()
			case hi-lo < 1e-12:
				g.norm[i][c] = 0
			default:
				g.norm[i][c] = (row[c] - lo) / (hi - lo)
			}
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: each layer alone at %s (color scaled per column; red = most sensitive)", r.Architecture, r.Precision)
	pal := moreland.SmoothBlueRed()
	pal.SetMin(0)
	pal.SetMax(1)
	hm := plotter.NewHeatMap(g, pal.Palette(255))
	hm.Min, hm.Max = 0, 1
	hm.NaN = transparent{}
	p.Add(hm)
	var xys plotter.XYs
	var labels []string
	for i, row := range g.raw {
		for c, v := range row {
			if math.IsNaN(v) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(n - 1 - i)})
			labels = append(labels, fmt.Sprintf(cols[c].format, v))
		}
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		l.TextStyle[i].Font.Size = vg.Points(7)
	}
	p.Add(l)
	var xn, yn []string
	for _, c := range cols {
		xn = append(xn, c.name)
	}
	names := shortNames(r.Layers)
	for i := n - 1; i >= 0; i-- {
		yn = append(yn, fmt.Sprintf("%d %s", i, names[i]))
	}
	p.NominalX(xn...)
	p.NominalY(yn...)
	p.Y.Tick.Label.Font.Size = vg.Points(7)
	p.X.Padding, p.Y.Padding = 0, 0
	c := vgimg.NewWith(vgimg.UseWH(heatmapWidth, heatmapBase+vg.Length(n)*heatmapPerRow), vgimg.UseDPI(heatmapDPI))
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

type transparent struct{}

func (transparent) RGBA() (r, g, b, a uint32) { return 0, 0, 0, 0 }

// shortNames drops the prefix every layer name shares (up to a dot) and
// the ".weight" suffix, for readable axis labels.
func shortNames(ls []LayerResult) []string {
	out := make([]string, len(ls))
	prefix := ""
	for i, l := range ls {
		out[i] = strings.TrimSuffix(l.Name, ".weight")
		if i == 0 {
			prefix = out[0]
			continue
		}
		for !strings.HasPrefix(out[i], prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	prefix = prefix[:strings.LastIndex(prefix, ".")+1]
	if len(ls) > 1 {
		for i := range out {
			out[i] = strings.TrimPrefix(out[i], prefix)
		}
	}
	return out
}
