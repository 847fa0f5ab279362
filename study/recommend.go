package study

import (
	"fmt"
	"math"
	"sort"
	"strings"
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
		v = append(v, fmt.Sprintf("top-1 drop %.2f pp > %g", top1Drop(c), *k.MaxTop1Drop))
	}
	return v
}

// score orders passing cells: lower is better.
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
		// Ties (within 3%, below timing noise) go to the smaller file.
		sort.SliceStable(pass, func(i, j int) bool {
			a, b := score(pass[i], prefer), score(pass[j], prefer)
			if math.Abs(a-b) <= 0.03*math.Max(a, b) {
				return pass[i].ONNXBytes < pass[j].ONNXBytes
			}
			return a < b
		})
		best := pass[0]
		rec.Precision = best.Precision
		rec.Reason = fmt.Sprintf("%s: p50 %.3g ms (%.2f× FP32), %s, top-1 drop %.2f pp; best by %s of %d passing (%s)",
			best.Precision, best.P50Ms, best.Speedup, humanMB(best.ONNXBytes), top1Drop(best), prefer, len(pass),
			strings.Join(rec.Passing, ", "))
		out = append(out, rec)
	}
	return out
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
