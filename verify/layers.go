package verify

import (
	"fmt"
	"strings"
)

// LayerDiff says how the per-layer comparison behind Report.Layers was
// made: which inputs, how many, and why it is missing when it could not be
// made. It is filled only when a gate failed or it was asked for (verify
// --layers); Compare leaves it nil.
type LayerDiff struct {
	// Samples is how many of the run's inputs both models ran on with
	// their layers' inputs and outputs exposed.
	Samples int    `json:"samples"`
	Inputs  string `json:"inputs"`
	// Matched is the number of layers found in both graphs (by weight
	// name); Unmatched those found in only one.
	Matched   int `json:"matched"`
	Unmatched int `json:"unmatched"`
	// Error says why there are no layers ("" when there are).
	Error string `json:"error,omitempty"`
	// WeightError says why the weight SQNR column is empty.
	WeightError string `json:"weight_error,omitempty"`
}

// LayerDelta is one layer of the candidate against the same layer of the
// baseline, averaged over LayerDiff.Samples inputs. Rel errors are
// ‖candidate − baseline‖ / ‖baseline‖ of the value; cosines are between
// the two values. Introduced is OutputRelErr − InputRelErr: the error this
// layer adds to what reached it, so that a damaged layer ranks above the
// layers after it that only carry its error on.
type LayerDelta struct {
	Rank         int     `json:"rank"`
	Index        int     `json:"index"` // network order
	Name         string  `json:"name"`  // the weight's name without ".weight"
	Op           string  `json:"op"`    // the candidate's operator
	InputRelErr  float64 `json:"input_rel_error"`
	OutputRelErr float64 `json:"output_rel_error"`
	Introduced   float64 `json:"introduced_rel_error"`
	InputCosine  float64 `json:"input_cosine"`
	OutputCosine float64 `json:"output_cosine"`
	CosineDrop   float64 `json:"cosine_drop"`
	// WeightSQNRdB is the candidate weight's SQNR against FP32 (from its
	// artifact's per-tensor statistics), nil when unknown or not quantized.
	WeightSQNRdB *float64 `json:"weight_sqnr_db"`
}

// LayersShown is how many ranked layers the Markdown report lists (the
// JSON has them all).
const LayersShown = 10

// markdownLayers writes the per-layer section.
func (r *Report) markdownLayers(b *strings.Builder) {
	d := r.LayerDiff
	if d == nil {
		return
	}
	b.WriteString("\n### Layers that differ most\n\n")
	if d.Error != "" {
		fmt.Fprintf(b, "No per-layer comparison: %s.\n", d.Error)
		return
	}
	fmt.Fprintf(b, "Both models run on %d of the inputs (%s) with every layer's input and output exposed; %d layers matched by weight name",
		d.Samples, d.Inputs, d.Matched)
	if d.Unmatched > 0 {
		fmt.Fprintf(b, ", %d in one graph only", d.Unmatched)
	}
	b.WriteString(". Ranked by the relative error each layer *introduces* (its output's error minus its input's), " +
		"not the error it carries on from earlier layers.")
	if d.WeightError != "" {
		fmt.Fprintf(b, " No weight SQNR: %s.", d.WeightError)
	}
	b.WriteString("\n\n| rank | # | layer | op | introduced rel. error | output rel. error | input rel. error | output cosine | cosine drop | weight SQNR dB |\n")
	b.WriteString("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Layers[:min(LayersShown, len(r.Layers))] {
		sq := "—"
		if l.WeightSQNRdB != nil {
			sq = fmt.Sprintf("%.1f", *l.WeightSQNRdB)
		}
		fmt.Fprintf(b, "| %d | %d | `%s` | %s | %.4g | %.4g | %.4g | %.6f | %.3g | %s |\n", l.Rank, l.Index, l.Name, l.Op,
			l.Introduced, l.OutputRelErr, l.InputRelErr, l.OutputCosine, l.CosineDrop, sq)
	}
}
