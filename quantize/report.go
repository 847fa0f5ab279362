package quantize

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// Files of a calibration report (--report DIR).
const (
	ReportMarkdown = "calibration.md"
	ReportJSON     = "calibration.json"
	ReportPNG      = "calibration.png"
)

// FP16 risk verdicts of a tensor.
const (
	FP16OK        = "ok"
	FP16Overflow  = "overflow"  // some |x| > 65504: Inf in FP16
	FP16Underflow = "underflow" // ≥ 0.1% of the values round to 0 in FP16
)

// fp16UnderflowShare is the fraction of a tensor's values flushed to zero
// in FP16 from which the loss is called a risk: below it, the zeros are
// drowned by the values that survive.
const fp16UnderflowShare = 1e-3

// ReportTensor is one activation tensor in the calibration report.
type ReportTensor struct {
	Tensor    string     `json:"tensor"`
	Count     int64      `json:"count"`
	NonFinite int64      `json:"non_finite"`
	Min       float64    `json:"min"`
	Max       float64    `json:"max"`
	P0001     float64    `json:"p0.001"`
	P001      float64    `json:"p0.01"`
	P9999     float64    `json:"p99.99"`
	P99999    float64    `json:"p99.999"`
	Range     [2]float64 `json:"range"`
	Clipped   float64    `json:"clipped_fraction"`
	Quantized bool       `json:"quantized"`
	FP16      FP16Risk   `json:"fp16"`
}

// FP16Risk counts what FP16 would do to a tensor's values.
type FP16Risk struct {
	Risk      string  `json:"risk"`
	Overflow  int64   `json:"overflow"`  // |x| > 65504
	Flushed   int64   `json:"flushed"`   // 0 < |x| < 2^-25
	Subnormal int64   `json:"subnormal"` // 2^-25 ≤ |x| < 2^-14
	MaxAbs    float64 `json:"max_abs"`
}

// Report is calibration.json.
type Report struct {
	Format      string         `json:"format"`
	Model       string         `json:"model"`
	Method      Method         `json:"method"`
	Calibration SourceInfo     `json:"calibration"`
	FP16Safe    bool           `json:"fp16_safe"`
	FP16Risky   []string       `json:"fp16_risky,omitempty"`
	Tensors     []ReportTensor `json:"tensors"`
}

// NewReport summarises the statistics of the calibrated tensors.
func NewReport(mf *Manifest, tensors []string, stats map[string]*Stats) *Report {
	r := &Report{Format: "quantpack.calibration/v1", Model: mf.Source.Path, Method: mf.Method, Calibration: mf.Calibration, FP16Safe: true}
	ranges := map[string]ActRecord{}
	for _, a := range mf.Activations {
		ranges[a.Tensor] = a
	}
	for _, name := range tensors {
		s := stats[name]
		rt := ReportTensor{Tensor: name, Count: s.Count, NonFinite: s.NonFinite, Min: s.Min, Max: s.Max}
		if s.Count > 0 {
			rt.P0001, rt.P001 = s.quantile(0.00001, false), s.quantile(0.0001, false)
			rt.P9999, rt.P99999 = s.quantile(0.9999, true), s.quantile(0.99999, true)
			rt.P0001, rt.P001 = math.Max(rt.P0001, s.Min), math.Max(rt.P001, s.Min)
			rt.P9999, rt.P99999 = math.Min(rt.P9999, s.Max), math.Min(rt.P99999, s.Max)
		} else {
			rt.Min, rt.Max = 0, 0
		}
		if a, ok := ranges[name]; ok {
			rt.Range, rt.Clipped, rt.Quantized = a.Range, a.Clipped, true
		}
		f := FP16Risk{Risk: FP16OK, Overflow: s.Over16, Flushed: s.Flush16, Subnormal: s.Sub16, MaxAbs: math.Max(math.Abs(rt.Min), math.Abs(rt.Max))}
		switch {
		case s.Over16 > 0 || s.NonFinite > 0:
			f.Risk = FP16Overflow
		case s.Count > 0 && float64(s.Flush16) >= fp16UnderflowShare*float64(s.Count):
			f.Risk = FP16Underflow
		}
		if f.Risk != FP16OK {
			r.FP16Safe = false
			r.FP16Risky = append(r.FP16Risky, name)
		}
		rt.FP16 = f
		r.Tensors = append(r.Tensors, rt)
	}
	return r
}

// WriteReport writes the report's Markdown, JSON and PNG into the
// directory dir, created atomically.
func WriteReport(dir string, r *Report) error {
	d, err := atomicfile.CreateDir(dir)
	if err != nil {
		return fmt.Errorf("%w: --report %v", ErrOption, err)
	}
	defer d.Abort()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.Join(ReportJSON), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeMarkdown(d.Join(ReportMarkdown), r); err != nil {
		return err
	}
	if err := writePlot(d.Join(ReportPNG), r); err != nil {
		return err
	}
	return d.Commit()
}

func writeMarkdown(path string, r *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# Calibration report\n\nModel `%s`, method %s, %d %s samples", r.Model, r.Method, r.Calibration.Count, r.Calibration.Kind)
	if r.Calibration.SHA256 != "" {
		fmt.Fprintf(w, " (sha256 %s)", r.Calibration.SHA256)
	}
	fmt.Fprintf(w, ".\n\n## FP16\n\n")
	if r.FP16Safe {
		fmt.Fprintf(w, "FP16 looks safe for these tensors: no |x| > 65504, and under %.1f%% of any tensor's values round to 0.\n\n", 100*fp16UnderflowShare)
	} else {
		fmt.Fprintf(w, "**FP16 risk** in %d tensors: %v.\n\n", len(r.FP16Risky), r.FP16Risky)
	}
	fmt.Fprintf(w, "## Tensors\n\n![max |x| per tensor](%s)\n\n", ReportPNG)
	fmt.Fprintln(w, "| tensor | min | p0.001 | p99.999 | max | range | clipped | FP16 | overflow | flushed | subnormal |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, t := range r.Tensors {
		rng := "float"
		if t.Quantized {
			rng = fmt.Sprintf("[%.4g, %.4g]", t.Range[0], t.Range[1])
		}
		fmt.Fprintf(w, "| `%s` | %.4g | %.4g | %.4g | %.4g | %s | %.2e | %s | %d | %d | %d |\n", t.Tensor, t.Min, t.P0001, t.P99999, t.Max,
			rng, t.Clipped, t.FP16.Risk, t.FP16.Overflow, t.FP16.Flushed, t.FP16.Subnormal)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// writePlot draws log10 max|x| and the chosen range's magnitude per
// tensor, with FP16's limit as a line.
func writePlot(path string, r *Report) error {
	p := plot.New()
	p.Title.Text = "Activation magnitude per calibrated tensor"
	p.X.Label.Text = "tensor (graph order)"
	p.Y.Label.Text = "log10 |x|"
	var maxAbs, chosen plotter.XYs
	for i, t := range r.Tensors {
		if t.FP16.MaxAbs > 0 {
			maxAbs = append(maxAbs, plotter.XY{X: float64(i), Y: math.Log10(t.FP16.MaxAbs)})
		}
		if m := math.Max(math.Abs(t.Range[0]), math.Abs(t.Range[1])); t.Quantized && m > 0 {
			chosen = append(chosen, plotter.XY{X: float64(i), Y: math.Log10(m)})
		}
	}
	limit := plotter.XYs{{X: 0, Y: math.Log10(fp16Max)}, {X: float64(max(len(r.Tensors)-1, 1)), Y: math.Log10(fp16Max)}}
	for _, s := range []struct {
		name string
		xys  plotter.XYs
		line bool
	}{{"max |x|", maxAbs, false}, {"calibrated range", chosen, false}, {"FP16 max (65504)", limit, true}} {
		if len(s.xys) == 0 {
			continue
		}
		if s.line {
			l, err := plotter.NewLine(s.xys)
			if err != nil {
				return err
			}
			l.Color = plotter.DefaultLineStyle.Color
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			p.Add(l)
			p.Legend.Add(s.name, l)
			continue
		}
		sc, err := plotter.NewScatter(s.xys)
		if err != nil {
			return err
		}
		if s.name == "calibrated range" {
			sc.GlyphStyle.Shape = draw.CrossGlyph{}
		}
		p.Add(sc)
		p.Legend.Add(s.name, sc)
	}
	p.Legend.Top = true
	c := vgimg.NewWith(vgimg.UseWH(7*vg.Inch, 4*vg.Inch), vgimg.UseDPI(96))
	p.Draw(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		return err
	}
	return f.Close()
}
