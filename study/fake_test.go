package study

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/verifytest"
)

// fakeOpener opens any export as a verifytest.Runner sized from the
// config.json beside model.onnx: studies then run their real convert,
// export, caching, sharding and report code without ONNX Runtime. FP32
// runs take longer than the other precisions, so speedups are above 1.
// opened counts the models opened, by export directory.
func fakeOpener(t *testing.T, opened map[string]int) verify.Opener {
	return func(path string) (verify.Runner, error) {
		dir := filepath.Dir(path)
		b, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			return nil, err
		}
		var cfg struct {
			ImageSize int               `json:"image_size"`
			ID2Label  map[string]string `json:"id2label"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, err
		}
		if opened != nil {
			opened[dir]++
		}
		f := verifytest.New(cfg.ImageSize, "logits", max(len(cfg.ID2Label), 2), 1)
		f.Delay = 200 * time.Microsecond
		if filepath.Base(dir) == "fp32" {
			f.Delay = 400 * time.Microsecond
		}
		return f, nil
	}
}

// fakeOptions is a quick study of the vit and deit-distilled reference
// models on the fake runner.
func fakeOptions(t *testing.T, out string) Options {
	fx := fixtures(t)
	f := 5.0
	return Options{
		Sources: []string{filepath.Join(fx, "vit"), filepath.Join(fx, "deit-distilled")},
		Out:     out,
		Runtime: verify.Runtime{Open: fakeOpener(t, nil), Device: "cpu", ORTVersion: "fake", Threads: 1, BatchSizes: []int{1, 2}, Warmup: 0, Iters: 2},
		Inputs:  verify.Inputs{Samples: 2},
		// Prefer size: the recommendation must not depend on timings here.
		Constraints: Constraints{MaxTop1Drop: &f, Prefer: "size"},
	}
}

// timingFree are the report.md columns that do not depend on timing.
func timingFree(row []string) []string {
	var out []string
	for i, col := range MarkdownColumns {
		switch col {
		case "p50 ms", "FP32 p50 ms", "speedup", "throughput/s", "peak MB", "memory reduction %":
			continue
		}
		out = append(out, row[i])
	}
	return out
}

func rowsOf(r *Report) []string {
	var out []string
	for _, c := range r.Cells {
		out = append(out, strings.Join(timingFree(CellRow(c)), " | "))
	}
	return out
}

func logLines(dst *[]string) func(string) { return func(l string) { *dst = append(*dst, l) } }

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
