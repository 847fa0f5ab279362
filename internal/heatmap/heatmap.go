// Package heatmap draws the labelled heatmaps of quantpack's reports (the
// study's models × precisions maps, the sensitivity report's layers ×
// metrics map) with gonum/plot: one grid of coloured cells, the value
// written in each, named rows and columns, and a colour bar as the legend.
// The callers decide what the colours mean (scale, palette, range, legend
// ticks); this package only draws, so both reports look alike and a fix to
// the drawing is made once.
package heatmap

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// Bins is how many colours a map's cells are binned into (odd, so that the
// middle of a centred range has a bin of its own).
const Bins = 255

// DPI is the resolution of every map.
const DPI = 96

// Map is one heatmap. Rows run top to bottom, Cols left to right; Values
// and Labels are indexed [row][col] in that order.
type Map struct {
	Title      string
	Rows, Cols []string
	// Values are what the colours show, in the colour map's range
	// (clamped to it); NaN cells are left transparent.
	Values [][]float64
	// Labels are written centred in the cells ("" for none).
	Labels [][]string
	// Colors maps Values to colours; its Min and Max are the range.
	Colors palette.ColorMap
	// LegendTitle heads the colour bar; LegendTicks labels it (nil: the
	// colour map's values).
	LegendTitle string
	LegendTicks plot.Ticker
	// Geometry: the canvas is Width × Height, the colour bar takes
	// LegendWidth on the right. LabelPt and RowPt are the font sizes of
	// the cell labels and the row names (0: gonum's default).
	Width, Height, LegendWidth vg.Length
	LabelPt, RowPt             float64
}

// Size returns the pixel dimensions of a canvas w × h at DPI.
func Size(w, h vg.Length) (int, int) {
	px := func(l vg.Length) int { return int(math.Ceil(float64(l / vg.Inch * DPI))) }
	return px(w), px(h)
}

// grid is a Map's values as gonum's GridXYZ. Row 0 of gonum's grid is drawn
// at the bottom (its y axis points up), so r counts from the last row.
type grid struct{ m *Map }

func (g grid) Dims() (c, r int)   { return len(g.m.Cols), len(g.m.Rows) }
func (g grid) Z(c, r int) float64 { return g.m.clamped(len(g.m.Rows)-1-r, c) }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

func (m *Map) clamped(r, c int) float64 {
	v := m.Values[r][c]
	if math.IsNaN(v) {
		return v
	}
	return math.Max(m.Colors.Min(), math.Min(m.Colors.Max(), v))
}

// Write draws m as a PNG at path (atomically: the file appears whole or
// not at all).
func Write(path string, m Map) error {
	if len(m.Rows) == 0 || len(m.Cols) == 0 || len(m.Values) != len(m.Rows) {
		return fmt.Errorf("heatmap: %d rows × %d columns with %d rows of values", len(m.Rows), len(m.Cols), len(m.Values))
	}
	for _, row := range m.Values {
		if len(row) != len(m.Cols) {
			return fmt.Errorf("heatmap: a row of %d values for %d columns", len(row), len(m.Cols))
		}
	}
	lo, hi := m.Colors.Min(), m.Colors.Max()
	p := plot.New()
	p.Title.Text = m.Title
	hm := plotter.NewHeatMap(grid{&m}, Discrete(m.Colors, lo, hi, Bins))
	hm.Min, hm.Max = lo, hi
	hm.NaN = color.Transparent
	p.Add(hm)
	var xys plotter.XYs
	var labels []string
	n := len(m.Rows)
	for r, row := range m.Labels {
		for c, s := range row {
			if s == "" {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(n - 1 - r)})
			labels = append(labels, s)
		}
	}
	if len(xys) > 0 {
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
			if m.LabelPt > 0 {
				l.TextStyle[i].Font.Size = vg.Points(m.LabelPt)
			}
		}
		p.Add(l)
	}
	rows := make([]string, n)
	for i, name := range m.Rows {
		rows[n-1-i] = name
	}
	p.NominalX(m.Cols...)
	p.NominalY(rows...)
	if m.RowPt > 0 {
		p.Y.Tick.Label.Font.Size = vg.Points(m.RowPt)
	}
	p.X.Padding, p.Y.Padding = 0, 0

	legend := plot.New()
	legend.Title.Text = m.LegendTitle
	legend.Add(&plotter.ColorBar{ColorMap: m.Colors, Vertical: true})
	legend.HideX()
	legend.Y.Padding = 0
	if m.LegendTicks != nil {
		legend.Y.Tick.Marker = m.LegendTicks
	}

	c := vgimg.NewWith(vgimg.UseWH(m.Width, m.Height), vgimg.UseDPI(DPI))
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -m.LegendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, m.Width-m.LegendWidth, 0, 0.35*vg.Inch, -0.1*vg.Inch))
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

// colorList is a palette.Palette.
type colorList []color.Color

func (c colorList) Colors() []color.Color { return c }

// Discrete samples cm at n evenly spaced values over [lo, hi]. (gonum's
// palette.Reverse(cm).Palette(n) leaves the middle colour nil for odd n,
// which drew a centred map's middle cells transparent.)
func Discrete(cm palette.ColorMap, lo, hi float64, n int) palette.Palette {
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

// Ticks labels a colour bar at its ends, its middle and halfway between,
// each value written by label.
type Ticks func(v float64) string

// Ticks implements plot.Ticker.
func (t Ticks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	mid := (lo + hi) / 2
	for _, x := range []float64{lo, (lo + mid) / 2, mid, (mid + hi) / 2, hi} {
		out = append(out, plot.Tick{Value: x, Label: t(x)})
	}
	return out
}
