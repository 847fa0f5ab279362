package study

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/version"
	"github.com/quantpack/quantpack/tune"
)

// SensitivityOptions ask a study for each model's per-layer sensitivity
// (study --sensitivity P): every quantizable layer quantized alone at
// Precision, measured against FP32 on Images (an ImageFolder) or, without
// it, Samples synthetic inputs. Open opens the in-memory variant graphs.
type SensitivityOptions struct {
	Precision convert.Precision
	Images    string
	Samples   int
	Open      tune.Opener
}

// TopSensitive is how many of the most sensitive layers report.md lists
// per model (report.json and the sensitivity directory have them all).
const TopSensitive = 5

// SensitivitySummary is one model's sensitivity as the study reports it.
// The full report (Markdown, CSV, JSON and the layers × metric heatmap) is
// in Dir, relative to the report directory.
type SensitivitySummary struct {
	Model     string            `json:"model"`
	Precision convert.Precision `json:"precision"`
	Dir       string            `json:"dir"`
	Inputs    string            `json:"inputs"`
	Samples   int               `json:"samples"`
	Layers    int               `json:"layers"`
	// Ranking says what MostSensitive is ranked by: "kl" (logits) or
	// "1-cosine" (embeddings).
	Ranking       string             `json:"ranking"`
	AllQuantized  tune.Metrics       `json:"all_quantized"`
	MostSensitive []tune.LayerResult `json:"most_sensitive"`
	Seconds       float64            `json:"seconds"`
	Key           string             `json:"key"`
	Reused        bool               `json:"-"`
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// sensitivityDir is model i's sensitivity directory inside the report
// directory.
func sensitivityDir(i int, name string) string {
	return fmt.Sprintf("sensitivity-%d-%s", i, unsafeName.ReplaceAllString(name, "_"))
}

// sensitivityKey keys a model's sensitivity report by what it was made
// from: the tool, the checkpoint's sha256 sums, the precision and the
// 4-bit defaults that decide its bytes, the inputs (the image folder by
// content) and the int8 export form.
func (o *Options) sensitivityKey(mi ModelInfo, calib string) string {
	var sums []string
	for _, s := range mi.Sources {
		sums = append(sums, s.Path+":"+s.SHA256)
	}
	s := o.Sensitivity
	return cellKey("quantpack-study-sensitivity/1", version.Version, sums, s.Precision, s.Images, calib, s.Samples, o.Int8Mode,
		convert.DefaultInt4Block, convert.Int4BlockRule, convert.DefaultInt4Method, convert.DefaultNF4Block, convert.DefaultNF4Method)
}

// runSensitivity writes (or reuses) model i's sensitivity report into
// REPORTDIR/sensitivity-I-NAME and returns its summary. The key is written
// beside the directory after the report is complete, so a missing or
// different key is a miss and the report is made again.
func runSensitivity(ctx context.Context, opt *Options, i int, mi ModelInfo, calib string) (*SensitivitySummary, error) {
	rel := sensitivityDir(i, mi.Name)
	dir := filepath.Join(opt.Out, rel)
	key := opt.sensitivityKey(mi, calib)
	keyFile := dir + ".key"
	if b, err := os.ReadFile(keyFile); err == nil && strings.TrimSpace(string(b)) == key && !opt.Force {
		if r, err := readSensitivity(dir); err == nil {
			s := summarizeSensitivity(mi.Name, rel, key, r)
			s.Reused = true
			return s, nil
		}
	}
	for _, p := range []string{keyFile, dir} {
		if err := os.RemoveAll(p); err != nil {
			return nil, err
		}
	}
	so := opt.Sensitivity
	r, err := tune.Sensitivity(ctx, tune.SensitivityOptions{Src: mi.Path, Precision: so.Precision, Images: so.Images,
		Samples: so.Samples, Open: so.Open, Export: convert.ExportOptions{Int8Mode: opt.Int8Mode}})
	if err != nil {
		return nil, fmt.Errorf("sensitivity at %s: %w", so.Precision, err)
	}
	if err := tune.WriteSensitivity(dir, r); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(keyFile, []byte(key+"\n")); err != nil {
		return nil, err
	}
	return summarizeSensitivity(mi.Name, rel, key, r), nil
}

func summarizeSensitivity(model, rel, key string, r *tune.SensitivityReport) *SensitivitySummary {
	s := &SensitivitySummary{Model: model, Precision: r.Precision, Dir: filepath.ToSlash(rel), Inputs: r.Inputs, Samples: r.Samples,
		Layers: len(r.Layers), Ranking: "kl", AllQuantized: r.AllQuantized, MostSensitive: r.MostSensitive(TopSensitive),
		Seconds: r.Timing.Total, Key: key}
	if r.Score(r.AllQuantized) != r.AllQuantized.KLMean {
		s.Ranking = "1-cosine"
	}
	return s
}

// maxSensitivityBytes bounds a sensitivity.json read back for reuse (a
// few hundred bytes per layer).
const maxSensitivityBytes = 64 << 20

func readSensitivity(dir string) (*tune.SensitivityReport, error) {
	f, err := os.Open(filepath.Join(dir, tune.FileJSON))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSensitivityBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSensitivityBytes {
		return nil, fmt.Errorf("%s: over %d bytes", tune.FileJSON, maxSensitivityBytes)
	}
	var r tune.SensitivityReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Format != tune.ReportFormat || len(r.Layers) == 0 {
		return nil, fmt.Errorf("%s: not a sensitivity report", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, tune.FilePNG)); err != nil {
		return nil, err
	}
	return &r, nil
}

// writeSensitivityMarkdown is report.md's per-layer section: per model,
// the heatmap and the most sensitive layers.
func writeSensitivityMarkdown(w io.Writer, r *Report) {
	if len(r.Sensitivity) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Per-layer sensitivity\n\n")
	fmt.Fprintf(w, "Each quantizable layer quantized alone, the rest FP32, measured against FP32 on the same inputs "+
		"(`quantpack sensitivity`). The heatmaps show every layer in network order against each metric, each column "+
		"coloured from its least (blue) to its most (red) sensitive layer; the tables list the %d layers that cost the most "+
		"(by mean KL divergence of the outputs; by 1 − cosine for embedding models). Each model's directory has the full "+
		"table as Markdown, CSV and JSON.\n", TopSensitive)
	for _, s := range r.Sensitivity {
		a := s.AllQuantized
		fmt.Fprintf(w, "\n### %s at %s\n\n", s.Model, s.Precision)
		fmt.Fprintf(w, "%d layers on %s (%d samples), %.1f s. All layers at %s: KL %.3g, cosine mean %s, top-1 agreement %s%%. "+
			"Full report: [%s/](%s/%s).\n\n", s.Layers, s.Inputs, s.Samples, s.Seconds, s.Precision, a.KLMean,
			fmtCos(a.CosineMean), fmtPct(a.Top1Agreement), s.Dir, s.Dir, tune.FileMarkdown)
		fmt.Fprintf(w, "![%s sensitivity](%s/%s)\n\n", s.Model, s.Dir, tune.FilePNG)
		writeTable(w, []string{"rank", "#", "layer", "scheme", "KL", "cosine mean", "cosine min", "top-1 agree %"},
			func(row func([]string)) {
				for k, l := range s.MostSensitive {
					m := l.Alone
					row([]string{fmt.Sprint(k + 1), fmt.Sprint(l.Index), "`" + l.Name + "`", l.Scheme,
						fmt.Sprintf("%.3g", m.KLMean), fmtCos(m.CosineMean), fmtCos(m.CosineMin), fmtPct(m.Top1Agreement)})
				}
			})
	}
}

func (o *Options) logSensitivity(s *SensitivitySummary) {
	if o.Log == nil {
		return
	}
	state := "done"
	if s.Reused {
		state = "reused"
	}
	top := "-"
	if len(s.MostSensitive) > 0 {
		top = s.MostSensitive[0].Name
	}
	o.Log(fmt.Sprintf("%s %s sensitivity at %s: %d layers, most sensitive %s → %s", state, s.Model, s.Precision, s.Layers, top, s.Dir))
}
