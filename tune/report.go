package tune

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// Report files written by WriteSensitivity.
const (
	FileMarkdown = "sensitivity.md"
	FileCSV      = "sensitivity.csv"
	FileJSON     = "sensitivity.json"
	FilePNG      = "sensitivity.png"
)

// WriteSensitivity writes the report into dir (created; it must not exist
// or be empty; it appears only when every file is written).
func WriteSensitivity(dir string, r *SensitivityReport) error {
	d, err := atomicfile.CreateDir(dir)
	if err != nil {
		return err
	}
	defer d.Abort()
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	var md, cs bytes.Buffer
	WriteMarkdown(&md, r)
	if err := writeCSV(&cs, r); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{FileJSON, append(js, '\n')}, {FileMarkdown, md.Bytes()}, {FileCSV, cs.Bytes()}} {
		if err := atomicfile.WriteFile(d.Join(f.name), f.data); err != nil {
			return err
		}
	}
	if err := writeHeatmap(d.Join(FilePNG), r); err != nil {
		return err
	}
	return d.Commit()
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

// WriteMarkdown writes the report as Markdown: a summary, then one row per
// layer in network order with its rank by KL divergence.
func WriteMarkdown(w io.Writer, r *SensitivityReport) {
	fmt.Fprintf(w, "# Per-layer sensitivity: %s at %s\n\n", r.Architecture, r.Precision)
	fmt.Fprintf(w, "Source `%s`; inputs: %s (%d samples", r.Source, r.Inputs, r.Samples)
	if r.BaselineTop1 != nil {
		fmt.Fprintf(w, ", labelled; FP32 top-1 %s", pct(*r.BaselineTop1))
	}
	fmt.Fprintf(w, "). Each row quantizes that layer alone, the rest FP32")
	if len(r.Layers) > 0 && r.Layers[0].AllBut != nil {
		fmt.Fprintf(w, "; \"all but\" quantizes every layer except that one")
	}
	fmt.Fprintf(w, ". KL = mean KL(softmax FP32 ‖ softmax variant) in nats; rank 1 = largest KL.\n\n")
	a := r.AllQuantized
	fmt.Fprintf(w, "All %d layers at %s: KL %.3g, cosine mean %.6f (min %.6f), top-1 agreement %s", len(r.Layers), r.Precision,
		a.KLMean, a.CosineMean, a.CosineMin, pct(a.Top1Agreement))
	if a.Top1 != nil {
		fmt.Fprintf(w, ", top-1 %s", pct(*a.Top1))
	}
	fmt.Fprintf(w, ".\n\nTiming: %.1f s wall (%.1f s preparing, %.1f s storing FP32 activations, %.1f s for %d variant runs on %d workers, %d of them from stored activations), %.1f CPU s.\n\n",
		r.Timing.Total, r.Timing.Prepare, r.Timing.Reuse, r.Timing.Variants, r.Timing.Runs, r.Timing.Workers, r.Timing.Reused, r.Timing.CPU)
	rank := make([]int, len(r.Layers))
	for pos, i := range ranked(len(r.Layers), func(i int) float64 { return r.Layers[i].Alone.KLMean }) {
		rank[i] = pos + 1
	}
	head := "| # | layer | scheme | params | rank | KL | cosine mean | cosine min | top-1 agree |"
	sep := "|---|---|---|---|---|---|---|---|---|"
	if r.BaselineTop1 != nil {
		head += " top-1 |"
		sep += "---|"
	}
	loo := len(r.Layers) > 0 && r.Layers[0].AllBut != nil
	if loo {
		head += " all but: KL | all but: cosine |"
		sep += "---|---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	for i, l := range r.Layers {
		m := l.Alone
		fmt.Fprintf(w, "| %d | `%s` | %s | %d | %d | %.3g | %.6f | %.6f | %s |", l.Index, l.Name, l.Scheme, l.Params, rank[i],
			m.KLMean, m.CosineMean, m.CosineMin, pct(m.Top1Agreement))
		if r.BaselineTop1 != nil && m.Top1 != nil {
			fmt.Fprintf(w, " %s |", pct(*m.Top1))
		}
		if loo {
			fmt.Fprintf(w, " %.3g | %.6f |", l.AllBut.KLMean, l.AllBut.CosineMean)
		}
		fmt.Fprintln(w)
	}
}

func writeCSV(w io.Writer, r *SensitivityReport) error {
	cw := csv.NewWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	head := []string{"index", "layer", "scheme", "params", "kl_mean", "kl_max", "cosine_mean", "cosine_min", "top1_agreement", "top1"}
	loo := len(r.Layers) > 0 && r.Layers[0].AllBut != nil
	if loo {
		head = append(head, "allbut_kl_mean", "allbut_cosine_mean", "allbut_top1_agreement", "allbut_top1")
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	opt := func(p *float64) string {
		if p == nil {
			return ""
		}
		return f(*p)
	}
	for _, l := range r.Layers {
		m := l.Alone
		row := []string{strconv.Itoa(l.Index), l.Name, l.Scheme, strconv.FormatInt(l.Params, 10), f(m.KLMean), f(m.KLMax),
			f(m.CosineMean), f(m.CosineMin), f(m.Top1Agreement), opt(m.Top1)}
		if loo {
			a := l.AllBut
			row = append(row, f(a.KLMean), f(a.CosineMean), f(a.Top1Agreement), opt(a.Top1))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Score is how sensitive a layer measured m is, higher is more: the mean
// KL divergence for a model with logits, 1 − mean cosine for an embedding
// model (which has no KL).
func (r *SensitivityReport) Score(m Metrics) float64 {
	if r.AllQuantized.KLMean > 0 || m.KLMean > 0 {
		return m.KLMean
	}
	return 1 - m.CosineMean
}

// MostSensitive returns the n layers that cost the most quantized alone
// (Score), most sensitive first; ties keep network order.
func (r *SensitivityReport) MostSensitive(n int) []LayerResult {
	order := ranked(len(r.Layers), func(i int) float64 { return r.Score(r.Layers[i].Alone) })
	out := make([]LayerResult, 0, min(n, len(order)))
	for _, i := range order[:min(n, len(order))] {
		out = append(out, r.Layers[i])
	}
	return out
}
