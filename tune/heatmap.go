package tune

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/vg"

	"github.com/quantpack/quantpack/internal/heatmap"
)

// Heatmap geometry: fixed width, one row per layer.
const (
	heatmapWidth  = 9 * vg.Inch
	heatmapBase   = 1.4 * vg.Inch
	heatmapPerRow = 0.22 * vg.Inch
	legendWidth   = 0.9 * vg.Inch
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

// writeHeatmap draws layers (rows, network order) × metrics (columns).
// Each column is coloured on its own scale, from its least (blue) to its
// most (red) sensitive layer, so one palette serves metrics of different
// units; the cells show the raw figures.
func writeHeatmap(path string, r *SensitivityReport) error {
	cols := heatmapColumns(r)
	n := len(r.Layers)
	if n == 0 {
		return fmt.Errorf("tune: no layers to plot")
	}
	m := heatmap.Map{Title: fmt.Sprintf("%s: each layer alone at %s", r.Architecture, r.Precision),
		LegendTitle: "per column", LegendTicks: heatmap.Ticks(legendLabel),
		Width: heatmapWidth, Height: heatmapBase + vg.Length(n)*heatmapPerRow, LegendWidth: legendWidth, LabelPt: 7, RowPt: 7}
	for _, c := range cols {
		m.Cols = append(m.Cols, c.name)
	}
	names := shortNames(r.Layers)
	for i, l := range r.Layers {
		m.Rows = append(m.Rows, fmt.Sprintf("%d %s", i, names[i]))
		vals, labels := make([]float64, len(cols)), make([]string, len(cols))
		for c, col := range cols {
			vals[c] = col.value(l.Alone)
			if !math.IsNaN(vals[c]) {
				labels[c] = fmt.Sprintf(col.format, vals[c])
			}
		}
		m.Values, m.Labels = append(m.Values, vals), append(m.Labels, labels)
	}
	normalizeColumns(m.Values)
	pal := moreland.SmoothBlueRed()
	pal.SetMin(0)
	pal.SetMax(1)
	m.Colors = pal
	return heatmap.Write(path, m)
}

// normalizeColumns scales each column of v to [0, 1] over its finite
// values (NaN stays NaN; a constant column is 0).
func normalizeColumns(v [][]float64) {
	if len(v) == 0 {
		return
	}
	for c := range v[0] {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, row := range v {
			if x := row[c]; !math.IsNaN(x) {
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
		}
		for _, row := range v {
			switch {
			case math.IsNaN(row[c]):
			case hi-lo < 1e-12:
				row[c] = 0
			default:
				row[c] = (row[c] - lo) / (hi - lo)
			}
		}
	}
}

// legendLabel names the colour bar's positions: each column's least and
// most sensitive layer sit at its ends.
func legendLabel(x float64) string {
	switch {
	case x <= 0:
		return "least"
	case x >= 1:
		return "most"
	}
	return fmt.Sprintf("%.2f", x)
}

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
