package study

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/convert"
)

// Constraints are the deployment limits a recommendation must meet; nil
// fields are not checked. Prefer picks among the precisions that pass:
// "latency" (default), "size" or "memory".
type Constraints struct {
	MaxLatencyMs *float64 `json:"max_latency_ms"`
	MaxMemoryMB  *float64 `json:"max_memory_mb"`
	MaxTop1Drop  *float64 `json:"max_top1_drop"` // percentage points
	Prefer       string   `json:"prefer"`
}

// Recommendation is the precision chosen for one model, and why.
type Recommendation struct {
	Model     string   `json:"model"`
	Precision string   `json:"precision"` // "" when none passes
	Reason    string   `json:"reason"`
	Passing   []string `json:"passing"`
}

// top1Drop is the accuracy drop in percentage points with labels, else the
// top-1 disagreement with FP32 (100 − agreement %), the seed's proxy made
// honest: it is measured, not simulated. Embedding models use 100·(1−cosine).
func top1Drop(c *Cell) float64 {
	if c.AccuracyDrop != nil {
		return *c.AccuracyDrop
	}
	if c.Top1 != nil {
		return 100 * (1 - *c.Top1)
	}
	return 100 * (1 - c.CosineMean)
}

// dropText names and formats what top1Drop measured for c: an accuracy
// drop with labels, a disagreement with FP32 without (which is not a drop
// in accuracy, and is not called one), or 100·(1 − cosine) for embeddings.
func dropText(c *Cell) string {
	switch {
	case c.AccuracyDrop != nil:
		return fmt.Sprintf("top-1 accuracy drop %.2f pp", top1Drop(c))
	case c.Top1 != nil:
		return fmt.Sprintf("top-1 disagreement with FP32 %.2f%%", top1Drop(c))
	}
	return fmt.Sprintf("embedding 100·(1−cosine) %.2f", top1Drop(c))
}

// TieFraction is the recommendation's tie rule: a passing precision whose
// score (p50, bytes or peak memory, by preference) is within this fraction
// of the best one's counts as tied with it (timing noise on a shared
// machine is of this order), and among tied precisions the smallest ONNX
// file wins. The reason text states it whenever it decided.
const TieFraction = 0.03

// violations lists the constraints a cell misses.
func violations(c *Cell, k Constraints) []string {
	var v []string
	if k.MaxLatencyMs != nil && c.P50Ms > *k.MaxLatencyMs {
		v = append(v, fmt.Sprintf("p50 %.3g ms > %g", c.P50Ms, *k.MaxLatencyMs))
	}
	if k.MaxMemoryMB != nil {
		if c.PeakMB == nil {
			v = append(v, "memory not measured")
		} else if *c.PeakMB > *k.MaxMemoryMB {
			v = append(v, fmt.Sprintf("peak %.0f MB > %g", *c.PeakMB, *k.MaxMemoryMB))
		}
	}
	if k.MaxTop1Drop != nil && top1Drop(c) > *k.MaxTop1Drop {
		v = append(v, fmt.Sprintf("%s > %g", dropText(c), *k.MaxTop1Drop))
	}
	return v
}

// score orders passing cells: lower is better. Latency is compared as
// each cell's p50 relative to the FP32 p50 of its own run (1/speedup):
// cells are timed in separate runs, and on a shared machine the absolute
// p50 of two runs differ by more than the precisions do.
func score(c *Cell, prefer string) float64 {
	switch prefer {
	case "size":
		return float64(c.ONNXBytes)
	case "memory":
		if c.PeakMB != nil {
			return *c.PeakMB
		}
		return math.Inf(1)
	}
	if c.BaselineP50 > 0 && c.P50Ms > 0 {
		return c.P50Ms / c.BaselineP50
	}
	return c.P50Ms
}

func recommend(r *Report, k Constraints) []Recommendation {
	prefer := k.Prefer
	if prefer == "" {
		prefer = "latency"
	}
	var out []Recommendation
	for _, m := range r.Models {
		var cells, pass []*Cell
		for _, c := range r.Cells {
			if c.Model == m.Name {
				cells = append(cells, c)
				if len(violations(c, k)) == 0 {
					pass = append(pass, c)
				}
			}
		}
		if len(cells) == 0 {
			continue // not measured (another shard's model, or it failed)
		}
		rec := Recommendation{Model: m.Name}
		for _, c := range pass {
			rec.Passing = append(rec.Passing, c.Precision)
		}
		if len(pass) == 0 {
			var miss []string
			for _, c := range cells {
				miss = append(miss, c.Precision+": "+strings.Join(violations(c, k), ", "))
			}
			rec.Reason = "no precision meets the constraints (" + strings.Join(miss, "; ") + ")"
			out = append(out, rec)
			continue
		}
		best := pass[0]
		for _, c := range pass[1:] {
			if score(c, prefer) < score(best, prefer) {
				best = c
			}
		}
		fastest := best
		for _, c := range pass {
			if score(c, prefer) <= (1+TieFraction)*score(fastest, prefer) && c.ONNXBytes < best.ONNXBytes {
				best = c
			}
		}
		rec.Precision = best.Precision
		by := prefer
		if prefer == "latency" {
			by = "latency relative to its own run's FP32"
		}
		rec.Reason = fmt.Sprintf("%s: p50 %.3g ms (%.2f× FP32 p50 %.3g ms of the same run), %s, %s; best by %s of %d passing (%s)",
			best.Precision, best.P50Ms, best.Speedup, best.BaselineP50, humanMB(best.ONNXBytes), dropText(best), by, len(pass),
			strings.Join(rec.Passing, ", "))
		if best != fastest {
			rec.Reason += fmt.Sprintf("; tie rule: %s is within %.0f%% of the best %s (%s) and its file is smaller",
				best.Precision, 100*TieFraction, prefer, fastest.Precision)
		}
		if best.Auto != nil {
			rec.Reason += "; " + autoText(best.Auto)
		}
		out = append(out, rec)
	}
	return out
}

// autoText describes an auto cell's mix and its search for a reason.
func autoText(a *convert.AutoRecord) string {
	var mix []string
	for _, k := range slices.Sorted(maps.Keys(a.Mix)) {
		mix = append(mix, fmt.Sprintf("%s×%d", k, a.Mix[k]))
	}
	reached := "reached"
	if !a.Reached {
		reached = "not reached (" + a.Stop + ")"
	}
	return fmt.Sprintf("auto mix %s (search target %s %s on %s)", strings.Join(mix, " "), a.Target, reached, a.Calibration)
}

// FamilySummary averages a family's cells per precision.
type FamilySummary struct {
	Family     string   `json:"family"`
	Precision  string   `json:"precision"`
	Models     int      `json:"models"`
	Speedup    float64  `json:"speedup_geomean"`
	SizeRatio  float64  `json:"size_ratio_mean"`
	Top1       *float64 `json:"top1_agreement_mean"`
	CosineMean float64  `json:"cosine_mean"`
}

func summarize(r *Report) []FamilySummary {
	type key struct{ f, p string }
	acc := map[key]*FamilySummary{}
	logSum := map[key]float64{}
	top := map[key][]float64{}
	var order []key
	for _, c := range r.Cells {
		k := key{c.Family, c.Precision}
		s := acc[k]
		if s == nil {
			s = &FamilySummary{Family: c.Family, Precision: c.Precision}
			acc[k] = s
			order = append(order, k)
		}
		s.Models++
		if c.Speedup > 0 {
			logSum[k] += math.Log(c.Speedup)
		}
		s.SizeRatio += c.SizeRatio
		s.CosineMean += c.CosineMean
		if c.Top1 != nil {
			top[k] = append(top[k], *c.Top1)
		}
	}
	var out []FamilySummary
	for _, k := range order {
		s := acc[k]
		n := float64(s.Models)
		s.Speedup = math.Exp(logSum[k] / n)
		s.SizeRatio /= n
		s.CosineMean /= n
		if t := top[k]; len(t) > 0 {
			var sum float64
			for _, v := range t {
				sum += v
			}
			m := sum / float64(len(t))
			s.Top1 = &m
		}
		out = append(out, *s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Family != out[j].Family {
			return out[i].Family < out[j].Family
		}
		return precisionRank(out[i].Precision) < precisionRank(out[j].Precision)
	})
	return out
}

func precisionRank(p string) int {
	for i, q := range DefaultPrecisions {
		if string(q) == p {
			return i
		}
	}
	return len(DefaultPrecisions)
}
