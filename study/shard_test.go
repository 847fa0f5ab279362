package study

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify"
)

// TestShardsMergeEqualWhole runs a 2-model study whole and as 3 shards,
// merges the shards, and checks that the merge has the whole run's rows
// (timings aside), recommendation and heatmap layout; that a shard of
// another study is refused with exit 2; and that a missing shard is named.
func TestShardsMergeEqualWhole(t *testing.T) {
	root := t.TempDir()
	whole, err := Run(context.Background(), fakeOptions(t, filepath.Join(root, "whole")))
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Cells) != 2*len(DefaultPrecisions) {
		t.Fatalf("whole: %d cells", len(whole.Cells))
	}
	var dirs []string
	dealt := map[string]int{}
	for i := 1; i <= 3; i++ {
		opt := fakeOptions(t, filepath.Join(root, "shard", string(rune('0'+i))))
		opt.Shard = Shard{Index: i, Total: 3}
		r, err := Run(context.Background(), opt)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if r.Shard == nil || len(r.Cells) != len(r.Shard.Cells) || len(r.Cells) == 0 {
			t.Fatalf("shard %d: %d cells, info %+v", i, len(r.Cells), r.Shard)
		}
		for _, c := range r.Shard.Cells {
			dealt[c]++
		}
		if r.StudyID != whole.StudyID {
			t.Fatalf("shard %d study id %s, whole %s", i, r.StudyID, whole.StudyID)
		}
		dirs = append(dirs, opt.Out)
	}
	if len(dealt) != len(whole.Cells) {
		t.Fatalf("shards were dealt %d distinct cells, the study has %d: %v", len(dealt), len(whole.Cells), dealt)
	}
	for c, n := range dealt {
		if n != 1 {
			t.Errorf("cell %s dealt to %d shards", c, n)
		}
	}
	out := filepath.Join(root, "merged")
	merged, err := Merge(dirs, out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsOf(merged), rowsOf(whole); !slices.Equal(got, want) {
		t.Fatalf("merged rows differ from the whole run's:\nmerged %q\nwhole  %q", got, want)
	}
	back, err := ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rowsOf(back), rowsOf(whole)) {
		t.Fatal("merged report.json rows differ from the whole run's")
	}
	if len(back.Recommendations) != len(whole.Recommendations) {
		t.Fatalf("recommendations: %+v vs %+v", back.Recommendations, whole.Recommendations)
	}
	for i, rec := range back.Recommendations {
		w := whole.Recommendations[i]
		if rec.Model != w.Model || rec.Precision != w.Precision || !slices.Equal(rec.Passing, w.Passing) {
			t.Errorf("recommendation %d: merged %+v, whole %+v", i, rec, w)
		}
	}
	rowsM, colsM := HeatmapLayout(back)
	rowsW, colsW := HeatmapLayout(whole)
	if !slices.Equal(rowsM, rowsW) || !slices.Equal(colsM, colsW) {
		t.Fatalf("heatmap layout: merged %v × %v, whole %v × %v", rowsM, colsM, rowsW, colsW)
	}
	for _, name := range []string{FileSpeedup, FileSize, FileAgree} {
		a, b := pngSize(t, filepath.Join(out, name)), pngSize(t, filepath.Join(root, "whole", name))
		if a != b {
			t.Errorf("%s: merged %v, whole %v", name, a, b)
		}
	}

	// A shard measured on another machine is merged, and the report says so.
	other2 := filepath.Join(root, "shard", "2-other-machine")
	r2, err := ReadReport(dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	r2.Provenance.CPUModel = "another CPU"
	if err := os.MkdirAll(other2, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r2)
	if err := os.WriteFile(filepath.Join(other2, FileJSON), b, 0o644); err != nil {
		t.Fatal(err)
	}
	mixed, err := Merge([]string{dirs[0], other2, dirs[2]}, filepath.Join(root, "mixed"))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(root, "mixed", FileMarkdown))
	if len(mixed.Machines) != 2 || !strings.Contains(string(md), "measured on 2 different machines") {
		t.Fatalf("machines %q; report.md does not flag them", mixed.Machines)
	}
	if !slices.Equal(rowsOf(mixed), rowsOf(whole)) {
		t.Fatal("rows changed with the machines")
	}

	// A shard of another study (other settings) is refused: exit 2.
	other := fakeOptions(t, filepath.Join(root, "other"))
	other.Samples = 3
	other.Shard = Shard{Index: 2, Total: 3}
	if _, err := Run(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	_, err = Merge([]string{dirs[0], other.Out, dirs[2]}, filepath.Join(root, "bad"))
	if !errors.Is(err, ErrForeignShard) || fault.ClassOf(err) != fault.Usage || !strings.Contains(err.Error(), other.Out) {
		t.Fatalf("foreign shard: %v (class %v)", err, fault.ClassOf(err))
	}
	// One shard missing is reported by name, with its cells.
	_, err = Merge([]string{dirs[0], dirs[2]}, filepath.Join(root, "bad2"))
	if !errors.Is(err, ErrMissingShard) || fault.ClassOf(err) != fault.Usage || !strings.Contains(err.Error(), "shard 2/3 (cells ") {
		t.Fatalf("missing shard: %v", err)
	}
	// A whole run's report is not a shard.
	if _, err := Merge([]string{filepath.Join(root, "whole")}, filepath.Join(root, "bad3")); !errors.Is(err, ErrNotShard) {
		t.Fatalf("whole run as a shard: %v", err)
	}
}

func pngSize(t *testing.T, path string) [2]int {
	t.Helper()
	img := testenv.ReadPNG(t, path)
	return [2]int{img.Bounds().Dx(), img.Bounds().Dy()}
}

// TestAssignStable checks the shard deal: every cell exactly once, loads
// within one model's weight of each other, and adding a model at the end
// leaves every earlier cell on its shard.
func TestAssignStable(t *testing.T) {
	mk := func(sizes ...int64) []ModelInfo {
		var ms []ModelInfo
		for i, s := range sizes {
			ms = append(ms, ModelInfo{Name: string(rune('a' + i)), Sources: []manifest.File{{Size: s}}})
		}
		return ms
	}
	precs := precisionNames(DefaultPrecisions)
	base := mk(100, 5, 2500, 40, 40, 300)
	a := assign(base, precs, 4)
	b := assign(mk(100, 5, 2500, 40, 40, 300, 7000), precs, 4)
	for s := range a {
		if !slices.Equal(a[s], b[s][:len(a[s])]) {
			t.Fatalf("shard %d changed when a model was added: %v → %v", s, a[s], b[s])
		}
	}
	n, maxW := 0, int64(0)
	var loads []int64
	for _, cells := range a {
		var l int64
		for _, c := range cells {
			l += base[c.model].bytes()
			maxW = max(maxW, base[c.model].bytes())
		}
		loads = append(loads, l)
		n += len(cells)
	}
	if n != len(base)*len(precs) {
		t.Fatalf("%d cells dealt, want %d", n, len(base)*len(precs))
	}
	if slices.Max(loads)-slices.Min(loads) > maxW {
		t.Fatalf("loads %v differ by more than the largest cell %d", loads, maxW)
	}
}

func TestParseShard(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := env(nil)
	for _, c := range []struct {
		in   string
		env  map[string]string
		want Shard
		ok   bool
	}{
		{"", nil, Shard{}, true},
		{"2/3", nil, Shard{2, 3}, true},
		{"3/3", nil, Shard{3, 3}, true},
		{"0/3", nil, Shard{}, false},
		{"4/3", nil, Shard{}, false},
		{"1/0", nil, Shard{}, false},
		{"x/3", nil, Shard{}, false},
		{"2", nil, Shard{}, false},
		{"1/100000", nil, Shard{}, false},
		{"auto", map[string]string{EnvGitLabIndex: "2", EnvGitLabTotal: "4"}, Shard{2, 4}, true},
		{"auto", map[string]string{EnvK8sIndex: "0", EnvShardTotal: "5"}, Shard{1, 5}, true},
		{"auto", map[string]string{EnvK8sIndex: "5", EnvShardTotal: "5"}, Shard{}, false},
		{"auto", map[string]string{EnvK8sIndex: "1"}, Shard{}, false},
		{"auto", nil, Shard{}, false},
	} {
		get := none
		if c.env != nil {
			get = env(c.env)
		}
		got, err := ParseShard(c.in, get)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseShard(%q, %v) = %v, %v; want %v ok=%v", c.in, c.env, got, err, c.want, c.ok)
		}
		if err != nil && fault.ClassOf(err) != fault.Usage {
			t.Errorf("ParseShard(%q): class %v, want usage", c.in, fault.ClassOf(err))
		}
	}
}

// TestStaleExport is issue 17's repro: study a checkpoint, change its
// weights in place, study again (with and without --force). The FP32
// baseline must be exported again from the new bytes, and no cell of the
// old checkpoint reused.
func TestStaleExport(t *testing.T) {
	src := testenv.CopyDir(t, filepath.Join(fixtures(t), "vit"))
	out := t.TempDir()
	opt := fakeOptions(t, out)
	opt.Sources = []string{src}
	opt.Precisions = []convert.Precision{"fp32", "int8"}
	var lines []string
	opt.Log = logLines(&lines)
	r1, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	exportSum := func() string {
		b, err := os.ReadFile(filepath.Join(out, "work", "vit", "fp32", manifest.Name))
		if err != nil {
			t.Fatal(err)
		}
		var m convert.ExportManifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.Source.Files[0].SHA256
	}
	if got := exportSum(); got != r1.Models[0].Sources[0].SHA256 {
		t.Fatalf("first export made from %s, source is %s", got, r1.Models[0].Sources[0].SHA256)
	}
	for _, force := range []bool{false, true} {
		flipWeights(t, filepath.Join(src, "model.safetensors"))
		opt.Force = force
		lines = nil
		r2, err := Run(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		now := r2.Models[0].Sources[0].SHA256
		if now == r1.Models[0].Sources[0].SHA256 {
			t.Fatal("flipping weights did not change the source hash")
		}
		if got := exportSum(); got != now {
			t.Fatalf("force=%v: the FP32 baseline was made from %.12s, the checkpoint is now %.12s (stale export reused)", force, got, now)
		}
		if n := countPrefix(lines, "reused "); n != 0 {
			t.Fatalf("force=%v: %d cells of the old checkpoint reused: %q", force, n, lines)
		}
		for _, c := range r2.Cells {
			if c.Verify != nil && c.Verify.Provenance.BaselineSHA256 == r1.Cells[1].Verify.Provenance.BaselineSHA256 {
				t.Fatalf("force=%v: %s verified against the old FP32 export", force, c.Precision)
			}
		}
		r1 = r2
	}
	// Unchanged: everything is reused, nothing exported again.
	opt.Force = false
	lines = nil
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(lines, "reused "); n != 2 {
		t.Fatalf("unchanged re-run reused %d of 2 cells: %q", n, lines)
	}
}

// flipWeights changes the last float of a safetensors file's data.
func flipWeights(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b)
	b[n-2] ^= 0x10 // a mantissa/exponent bit of the last float32: still finite
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSourceHashedOnce counts the bytes the study reads to hash each
// checkpoint: exactly its size, once per run, however many precisions.
func TestSourceHashedOnce(t *testing.T) {
	var read int64
	orig := openSource
	t.Cleanup(func() { openSource = orig })
	openSource = func(path string) (io.ReadCloser, error) {
		f, err := orig(path)
		if err != nil {
			return nil, err
		}
		return &countingReader{f, &read}, nil
	}
	opt := fakeOptions(t, t.TempDir())
	opt.Precisions = []convert.Precision{"fp32", "int8", "nf4"}
	r, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, m := range r.Models {
		size += m.bytes()
	}
	if read != size {
		t.Fatalf("study read %d bytes hashing checkpoints of %d bytes", read, size)
	}
}

type countingReader struct {
	io.ReadCloser
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	return n, err
}

// TestValidateSourcesFirst: a bad last SRC fails the study before any cell
// runs, with exit 3 and the SRC named.
func TestValidateSourcesFirst(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rep")
	opt := fakeOptions(t, out)
	opened := map[string]int{}
	opt.Open = fakeOpener(t, opened)
	missing := filepath.Join(t.TempDir(), "typo")
	opt.Sources = append(opt.Sources, missing)
	_, err := Run(context.Background(), opt)
	if !errors.Is(err, ErrSource) || fault.ClassOf(err) != fault.Invalid || !strings.Contains(err.Error(), "SRC 3") {
		t.Fatalf("err = %v (class %v)", err, fault.ClassOf(err))
	}
	if len(opened) != 0 {
		t.Fatalf("models were opened before the bad SRC was found: %v", opened)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("report directory made for a study that could not start: %v", err)
	}
}

// TestFailedModelKeepsReport: when one model fails, the other is still
// measured and the report names the failure.
func TestFailedModelKeepsReport(t *testing.T) {
	out := t.TempDir()
	opt := fakeOptions(t, out)
	opt.Precisions = []convert.Precision{"fp32", "int8"}
	open := opt.Open
	opt.Open = func(p string) (verify.Runner, error) {
		if strings.Contains(p, string(filepath.Separator)+"vit"+string(filepath.Separator)) {
			return nil, errors.New("boom")
		}
		return open(p)
	}
	_, err := Run(context.Background(), opt)
	var re *RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Model != "vit" {
		t.Fatalf("err = %v", err)
	}
	back, err := ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Cells) != 2 || back.Cells[0].Model != "deit-distilled" || len(back.Failures) != 1 {
		t.Fatalf("report: %d cells, failures %+v", len(back.Cells), back.Failures)
	}
	md, _ := os.ReadFile(filepath.Join(out, FileMarkdown))
	if !strings.Contains(string(md), "**Failed models**") || !strings.Contains(string(md), "- vit: ") {
		t.Fatalf("report.md does not name the failed model:\n%s", md)
	}
}

// TestImagesKeyedByContent: cells measured on an image folder are reused
// only while the folder's contents are unchanged.
func TestImagesKeyedByContent(t *testing.T) {
	src := testenv.Fixtures(t, "images")
	imgs := filepath.Join(t.TempDir(), "images")
	for class, file := range map[string]string{"LABEL_1": "astronaut.png", "LABEL_2": "coffee.png"} {
		if err := os.MkdirAll(filepath.Join(imgs, class), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(src, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(imgs, class, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opt := fakeOptions(t, t.TempDir())
	opt.Sources = opt.Sources[:1]
	opt.Precisions = []convert.Precision{"fp32", "int8"}
	opt.Images = imgs
	var lines []string
	opt.Log = logLines(&lines)
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	lines = nil
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(lines, "reused "); n != 2 {
		t.Fatalf("unchanged images: %d of 2 cells reused: %q", n, lines)
	}
	// The same file name, other pixels.
	b, err := os.ReadFile(filepath.Join(src, "camera.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imgs, "LABEL_1", "astronaut.png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	lines = nil
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(lines, "reused "); n != 0 {
		t.Fatalf("changed images: %d cells reused: %q", n, lines)
	}
}

// FuzzParseShard: any --shard value and CI variables give a valid shard or
// a usage error, never a panic or an out-of-range index.
func FuzzParseShard(f *testing.F) {
	f.Add("2/3", "", "")
	f.Add("auto", "3", "4")
	f.Add("auto", "", "")
	f.Add("-1/99999999999999999999", "x", "0")
	f.Fuzz(func(t *testing.T, s, index, total string) {
		env := map[string]string{EnvGitLabIndex: index, EnvGitLabTotal: total, EnvK8sIndex: index, EnvShardTotal: total}
		sh, err := ParseShard(s, func(k string) string { return env[k] })
		if err != nil {
			if fault.ClassOf(err) != fault.Usage {
				t.Fatalf("%q: class %v", s, fault.ClassOf(err))
			}
			return
		}
		if s != "" && (sh.Index < 1 || sh.Index > sh.Total || sh.Total > maxShards) {
			t.Fatalf("%q → %+v", s, sh)
		}
	})
}

// TestAddModelRunsOnlyNewCells: a study re-run with one more model reuses
// every cell of the first and computes only the new model's.
func TestAddModelRunsOnlyNewCells(t *testing.T) {
	opt := fakeOptions(t, t.TempDir())
	opt.Precisions = []convert.Precision{"fp32", "int8"}
	all := opt.Sources
	opt.Sources = all[:1]
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	var lines []string
	opt.Log = logLines(&lines)
	opt.Sources = all
	r, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if countPrefix(lines, "reused vit/") != 2 || countPrefix(lines, "done deit-distilled/") != 2 || len(r.Cells) != 4 {
		t.Fatalf("second run: %q", lines)
	}
}

// FuzzMergeReport: whatever a shard directory's report.json holds, Merge
// fails with a classified error or merges; it never panics.
func FuzzMergeReport(f *testing.F) {
	good := `{"format":"quantpack-study/1","study_id":"x","settings":{"precisions":["fp32"],"batch_sizes":[1]},` +
		`"models":[{"name":"m","sources":[{"path":"a","size":1,"sha256":""}]}],` +
		`"cells":[{"model":"m","precision":"fp32","speedup":1,"size_ratio":1}],"shard":{"index":1,"total":1,"cells":["m/fp32"]}}`
	f.Add([]byte(good))
	f.Add([]byte(`{"format":"quantpack-study/1","settings":{"precisions":["fp32"],"batch_sizes":[]},"models":[{"name":"m"}],"cells":[null],"shard":{"index":1,"total":1}}`))
	f.Add([]byte(`{"format":"quantpack-study/1","shard":{"index":3,"total":99999999}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileJSON), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Merge([]string{dir}, filepath.Join(dir, "out"))
		if err != nil && fault.ClassOf(err) == fault.Other && !errors.Is(err, ErrNotShard) {
			t.Fatalf("unclassified: %v", err)
		}
	})
}
