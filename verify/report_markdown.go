package verify

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Markdown writes the report as pasteable Markdown: a table of latency,
// throughput, memory and size per model and batch size, then agreement,
// accuracy, inputs, placement, gates and provenance.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## quantpack verify: %s vs %s\n\n", r.Candidate.Path, r.Baseline.Path)
	fmt.Fprintf(&b, "Device %s, ONNX Runtime %s, %d threads, %d warm-up + %d timed runs per batch size.\n\n",
		r.Device, orDash(r.ORTVersion), r.Provenance.Threads, r.Provenance.Warmup, r.Provenance.Iters)
	gpu := r.Memory.GPUMethod != ""
	if gpu {
		b.WriteString("| model | batch | p50 ms | p90 ms | p99 ms | mean ms | samples/s | peak RSS MiB | GPU MiB | size MiB |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	} else {
		b.WriteString("| model | batch | p50 ms | p90 ms | p99 ms | mean ms | samples/s | peak RSS MiB | size MiB |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	}
	for _, m := range []struct {
		name string
		rep  *ModelReport
	}{{"baseline", &r.Baseline}, {"candidate", &r.Candidate}} {
		for _, x := range m.rep.Batches {
			mem := optMB(x.PeakRSSMB)
			if gpu {
				mem += " | " + optMB(x.GPUMB)
			}
			fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.3f | %.3f | %.1f | %s | %.2f |\n", m.name, x.Batch,
				x.LatencyMs.P50, x.LatencyMs.P90, x.LatencyMs.P99, x.LatencyMs.Mean, x.ThroughputSPS,
				mem, float64(m.rep.SizeBytes)/bytesPerMB)
		}
	}
	fmt.Fprintf(&b, "\nSpeedup (baseline p50 / candidate p50 at batch %d): **%.2f×**. Size ratio (candidate / baseline): **%.3f**.\n",
		r.Baseline.Batches[0].Batch, r.Speedup, r.SizeRatio)
	if r.Memory.Measured {
		fmt.Fprintf(&b, "Peak RSS is each model's child process minus the runtime's own %s MiB (%s).\n", optMB(r.Memory.RuntimeRSSMB), r.Memory.Method)
	}
	if r.Device == deviceCUDA && r.Memory.GPUNote != "" {
		fmt.Fprintf(&b, "GPU memory: %s.\n", r.Memory.GPUNote)
	}

	a := r.Agreement
	fmt.Fprintf(&b, "\n### Agreement on `%s` (%s, %d samples)\n\n", r.Baseline.Output, a.Kind, a.Samples)
	b.WriteString("| top-1 | top-5 | cosine mean | cosine min | max abs | mean abs | KL mean |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %s | %s | %.6f | %.6f | %.4g | %.4g | %s |\n", optPct(a.Top1), optPct(a.Top5),
		a.CosineMean, a.CosineMin, a.MaxAbs, a.MeanAbs, optG(a.KLMean))
	if a.NonFiniteSamples > 0 {
		fmt.Fprintf(&b, "\n%d samples had NaN or Inf outputs.\n", a.NonFiniteSamples)
	}
	if acc := r.Accuracy; acc != nil {
		fmt.Fprintf(&b, "\n### Accuracy (%d labelled images)\n\n| | baseline | candidate | drop (pp) |\n|---|---:|---:|---:|\n", acc.Samples)
		fmt.Fprintf(&b, "| top-1 | %.2f%% | %.2f%% | %.2f |\n", 100*acc.BaselineTop1, 100*acc.CandidateTop1, acc.Drop)
		fmt.Fprintf(&b, "| top-5 | %.2f%% | %.2f%% | %.2f |\n", 100*acc.BaselineTop5, 100*acc.CandidateTop5, acc.DropTop5)
	}

	in := r.Inputs
	b.WriteString("\n### Inputs\n\n")
	if in.Kind == "synthetic" {
		fmt.Fprintf(&b, "**Synthetic inputs** (%d, seed %d): agreement only, no accuracy. Pass --images DIR for real images.\n", in.Used, in.Seed)
	} else {
		fmt.Fprintf(&b, "Images from %s: %d used, %d skipped, %d labelled.\n", in.Dir, in.Used, in.Skipped, in.Labelled)
		for _, e := range in.Errors {
			fmt.Fprintf(&b, "- skipped %s: %s\n", e.Path, e.Error)
		}
	}
	fmt.Fprintf(&b, "Preprocessing: %s, %d×%d. Timed runs: %s.\n", in.Preprocessor, in.Height, in.Width, in.TimingInputs)

	if p := r.Placement; p.Baseline != nil || p.Candidate != nil {
		b.WriteString("\n### Node placement\n\n")
		for _, x := range []struct {
			name string
			pl   *Placement
		}{{"baseline", p.Baseline}, {"candidate", p.Candidate}} {
			if x.pl != nil {
				fmt.Fprintf(&b, "- %s: %s; %d fell back to CPU\n", x.name, providers(x.pl), x.pl.FellBackToCPU)
			}
		}
	}

	statisticsMarkdown(&b, r.Statistics)
	if r.Regression != nil {
		regressionMarkdown(&b, r.Regression)
	}
	if len(r.Gates.Passed)+len(r.Gates.Failed) > 0 {
		b.WriteString("\n### Gates\n\n")
		for _, g := range r.Gates.Failed {
			fmt.Fprintf(&b, "- **FAILED** %s\n", g)
		}
		for _, g := range r.Gates.Passed {
			fmt.Fprintf(&b, "- passed %s\n", g)
		}
	}
	r.markdownLayers(&b)

	pv := r.Provenance
	b.WriteString("\n### Provenance\n\n")
	fmt.Fprintf(&b, "quantpack %s (%s), %s/%s, CPU %s [%s], %d logical CPUs.\n", pv.ToolVersion, pv.GoVersion, pv.OS, pv.Arch,
		orDash(pv.CPUModel), strings.Join(pv.CPUFlags, " "), pv.LogicalCPUs)
	fmt.Fprintf(&b, "baseline sha256 %s, candidate sha256 %s.\n", pv.BaselineSHA256, pv.CandidateSHA256)
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optMB(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

func optPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100**v)
}

func optG(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.3g", *v)
}

func providers(p *Placement) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(p.Providers)) {
		parts = append(parts, fmt.Sprintf("%s %d nodes", name, p.Providers[name]))
	}
	if len(parts) == 0 {
		return "no nodes reported"
	}
	return strings.Join(parts, ", ")
}
