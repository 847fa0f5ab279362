package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// envTestMain makes the test binary behave as quantpack, so that verify's
// memory children (which re-execute the program) work under go test.
const envTestMain = "QUANTPACK_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envTestMain) == "1" {
		os.Exit(run(os.Args))
	}
	exe, err := os.Executable()
	childExe = func() (string, []string, error) { return exe, []string{envTestMain + "=1"}, err }
	os.Exit(m.Run())
}

// repoFixture returns ../shared/fixtures/<sub>, skipping (failing in CI) when absent.
func repoFixture(t testing.TB, sub string) string { return testenv.Fixtures(t, sub) }

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.SkipOrFail(t, format, args...)
}

// requireORT skips (fails in CI) when the ONNX Runtime library is absent.
func requireORT(t testing.TB) {
	t.Helper()
	if _, err := ort.LibraryPath(""); err != nil {
		skipOrFail(t, "ONNX Runtime library not found: %v", err)
	}
}

// exportRef exports the reference fixture sub at precision prec.
func exportRef(t testing.TB, sub string, prec convert.ExportPrecision) string {
	t.Helper()
	src := repoFixture(t, filepath.Join("reference", sub))
	out := filepath.Join(t.TempDir(), sub+"-"+string(prec))
	if _, err := convert.Export(context.Background(), src, out, convert.ExportOptions{Precision: prec}); err != nil {
		t.Fatalf("export %s %s: %v", sub, prec, err)
	}
	return out
}

// runCLI runs quantpack with args and returns the exit code and stdout.
func runCLI(t *testing.T, args ...string) (int, []byte) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdout
	os.Stdout = f
	code := run(append([]string{"quantpack"}, args...))
	os.Stdout = old
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

func decodeReport(t *testing.T, out []byte) *verify.Report {
	t.Helper()
	var r verify.Report
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not one verify report: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", out)
	}
	return &r
}

func TestVerifySelf(t *testing.T) {
	requireORT(t)
	m := exportRef(t, "vit", convert.ExportFP32)
	code, out := runCLI(t, "verify", m, m, "--batch", "1,3", "--warmup", "1", "--iters", "3", "--samples", "5",
		"--threads", "1", "--min-cosine", "0.999999", "--max-size-ratio", "1", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	r := decodeReport(t, out)
	a := r.Agreement
	// The same model, session options and inputs: ONNX Runtime's CPU
	// kernels are deterministic for a fixed thread count, so agreement is
	// exact; cosine is allowed float64 rounding only.
	if a.Kind != verify.Logits || a.Samples != 5 || *a.Top1 != 1 || *a.Top5 != 1 || a.CosineMin < 1-1e-6 || a.MaxAbs > 1e-6 {
		t.Fatalf("self agreement %+v", a)
	}
	if r.SizeRatio != 1 || r.Speedup <= 0 || r.Device != "cpu" || r.ORTVersion == "" || r.Provenance.Threads != 1 {
		t.Fatalf("size ratio %g speedup %g device %q ort %q", r.SizeRatio, r.Speedup, r.Device, r.ORTVersion)
	}
	if len(r.Candidate.Batches) != 2 || r.Candidate.Batches[1].Batch != 3 || r.Candidate.Batches[1].LatencyMs.Runs != 3 {
		t.Fatalf("batches %+v", r.Candidate.Batches)
	}
	if !r.Memory.Measured || r.Memory.RuntimeRSSMB == nil || *r.Memory.RuntimeRSSMB <= 0 || r.Baseline.PeakRSSMB == nil ||
		*r.Candidate.Batches[1].PeakRSSTotalMB < *r.Memory.RuntimeRSSMB {
		t.Fatalf("memory %+v, baseline %+v", r.Memory, r.Baseline.Batches)
	}
	// On the CPU the GPU figures are null, and the note says why.
	if r.Baseline.GPUMB != nil || r.Candidate.Batches[1].GPUMB != nil || r.Memory.GPUMethod != "" ||
		!strings.Contains(r.Memory.GPUNote, "device cpu") {
		t.Fatalf("GPU memory on the CPU: %+v, %v", r.Memory, r.Baseline.GPUMB)
	}
	if r.Placement.Baseline == nil || r.Placement.Baseline.Providers["CPUExecutionProvider"] == 0 {
		t.Fatalf("placement %+v", r.Placement.Baseline)
	}
	if len(r.Gates.Failed) != 0 || len(r.Gates.Passed) != 2 || r.Inputs.Kind != "synthetic" {
		t.Fatalf("gates %+v inputs %+v", r.Gates, r.Inputs)
	}
	checkSchema(t, out)
}

func TestVerifyQuantizedCandidate(t *testing.T) {
	requireORT(t)
	base := exportRef(t, "vit", convert.ExportFP32)
	cand := exportRef(t, "vit", convert.ExportInt8)
	code, out := runCLI(t, "verify", base, cand, "--iters", "2", "--warmup", "0", "--samples", "8", "--threads", "1", "--no-memory", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	r := decodeReport(t, out)
	// INT8 weights of a random 2-layer ViT: close to the baseline, not
	// equal. Bounds are loose on purpose; the quantizers' own accuracy is
	// tested in quant/ and convert/.
	if a := r.Agreement; a.CosineMin < 0.9 || a.MaxAbs == 0 {
		t.Fatalf("int8 agreement %+v", a)
	}
	if r.SizeRatio >= 1 || r.Memory.Measured {
		t.Fatalf("size ratio %g, memory %+v", r.SizeRatio, r.Memory)
	}
}

func TestVerifyGatesExit5(t *testing.T) {
	requireORT(t)
	m := exportRef(t, "vit", convert.ExportFP32)
	code, out := runCLI(t, "verify", m, m, "--iters", "1", "--warmup", "0", "--samples", "2", "--no-memory",
		"--min-speedup", "1000", "--max-size-ratio", "0.5", "--min-cosine", "0.99", "--json")
	if code != ExitGate {
		t.Fatalf("exit %d, want %d\n%s", code, ExitGate, out)
	}
	r := decodeReport(t, out)
	if len(r.Gates.Failed) != 2 || len(r.Gates.Passed) != 1 {
		t.Fatalf("gates %+v", r.Gates)
	}
	// The library call behind it: a GateError wrapping fault.ErrGate.
	o := verifyOptions{baseline: m, candidate: m, runtimeOptions: runtimeOptions{noMemory: true,
		Runtime: verify.Runtime{Device: "cpu", BatchSizes: []int{1}, Iters: 1}, Inputs: verify.Inputs{Samples: 2}},
		gates: verify.Gates{MaxSizeRatio: ptr(0.5)}}
	err := runVerify(context.Background(), o, io.Discard)
	var ge *verify.GateError
	if !errors.As(err, &ge) || !errors.Is(err, fault.ErrGate) || len(ge.Failed) != 1 {
		t.Fatalf("err %v", err)
	}
	// Markdown output lists the failed gate too.
	code, out = runCLI(t, "verify", m, m, "--iters", "1", "--samples", "2", "--no-memory", "--max-size-ratio", "0.5")
	if code != ExitGate || !strings.Contains(string(out), "**FAILED** max-size-ratio") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func ptr(v float64) *float64 { return &v }

func TestVerifyCUDAUnavailable(t *testing.T) {
	requireORT(t)
	m := exportRef(t, "vit", convert.ExportFP32)
	o := verifyOptions{baseline: m, candidate: m, runtimeOptions: runtimeOptions{noMemory: true,
		Runtime: verify.Runtime{Device: "cuda", BatchSizes: []int{1}, Iters: 1}, Inputs: verify.Inputs{Samples: 1}}}
	err := runVerify(context.Background(), o, io.Discard)
	if !errors.Is(err, ort.ErrCUDAUnavailable) && !errors.Is(err, ort.ErrUnavailable) {
		t.Fatalf("err %v, want CUDA unavailable", err)
	}
	if code, _ := runCLI(t, "verify", m, m, "--device", "cuda", "--no-memory"); code != ExitRuntime {
		t.Fatalf("exit %d, want %d", code, ExitRuntime)
	}
}

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "only-one"},
		{"verify", "a", "b", "--batch", "1,x"},
		{"verify", "a", "b", "--batch", "0"},
		{"verify", "a", "b", "--device", "tpu"},
		{"verify", "a", "b", "--ep-library", "x.so"},
		{"verify", "a", "b", "--iters", "0"},
	} {
		if code, _ := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// TestVerifyLabelledImages builds an ImageFolder from the fixture images
// whose labels are the reference model's own predictions (computed here
// with a plain ONNX Runtime session), except one image filed under a wrong
// class, plus truncated.jpg: accuracy must be exactly (n−1)/n for both
// models and the truncated file a listed per-image error.
func TestVerifyLabelledImages(t *testing.T) {
	requireORT(t)
	m := exportRef(t, "vit", convert.ExportFP32)
	images := repoFixture(t, "images")
	pre, err := verify.LoadPreprocessor(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.Open(filepath.Join(m, verify.ModelFile), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, err := os.ReadDir(images)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := func(class int, name string) {
		d := filepath.Join(dir, "LABEL_"+string(rune('0'+class)))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(images, name), filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
	decodable := 0
	for _, e := range entries {
		if e.Name() == "truncated.jpg" {
			link(0, e.Name())
			continue
		}
		buf := make([]float32, pre.SampleLen())
		if err := pre.ApplyFile(filepath.Join(images, e.Name()), buf); err != nil {
			t.Fatalf("fixture %s must decode: %v", e.Name(), err)
		}
		h, w, _ := pre.FixedSize()
		out, err := s.Run(context.Background(), []verify.Tensor{{Name: "pixel_values", DType: verify.Float32,
			Shape: []int64{1, 3, int64(h), int64(w)}, F32: buf}})
		if err != nil {
			t.Fatal(err)
		}
		pred := 0
		for k, v := range out[0].F32 {
			if v > out[0].F32[pred] {
				pred = k
			}
		}
		if decodable == 0 {
			pred = (pred + 1) % 10 // filed under a wrong class on purpose
		}
		link(pred, e.Name())
		decodable++
	}
	code, out := runCLI(t, "verify", m, m, "--images", dir, "--batch", "2", "--iters", "1", "--threads", "1",
		"--no-memory", "--max-top1-drop", "0", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	r := decodeReport(t, out)
	in := r.Inputs
	if in.Kind != "images" || in.Total != decodable+1 || in.Used != decodable || in.Labelled != decodable || in.Skipped != 1 ||
		len(in.Errors) != 1 || filepath.Base(in.Errors[0].Path) != "truncated.jpg" || in.Errors[0].Error == "" {
		t.Fatalf("inputs %+v", in)
	}
	want := float64(decodable-1) / float64(decodable)
	if acc := r.Accuracy; acc == nil || acc.Samples != decodable || acc.BaselineTop1 != want || acc.CandidateTop1 != want || acc.Drop != 0 {
		t.Fatalf("accuracy %+v, want top-1 %g", r.Accuracy, want)
	}
	checkSchema(t, out)
}

// TestVerifyEmbeddingModel: a ViTModel export has no logits; agreement is
// the cosine of pooler_output, with no top-1/top-5.
func TestVerifyEmbeddingModel(t *testing.T) {
	requireORT(t)
	m := exportRef(t, "vit-base", convert.ExportFP32)
	code, out := runCLI(t, "verify", m, m, "--iters", "1", "--samples", "3", "--threads", "1", "--no-memory", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	r := decodeReport(t, out)
	if a := r.Agreement; a.Kind != verify.Embedding || a.Top1 != nil || a.KLMean != nil || a.CosineMin < 1-1e-6 || r.Baseline.Output != "pooler_output" {
		t.Fatalf("agreement %+v on %q", a, r.Baseline.Output)
	}
	checkSchema(t, out)
}

// TestVerifyLayersOnGateFailure: a failed accuracy gate adds the per-layer
// comparison to --json (`layers`, `layer_diff`, as docs/verify.md's schema
// says) and to the Markdown; a passing run leaves it out unless --layers.
func TestVerifyLayersOnGateFailure(t *testing.T) {
	requireORT(t)
	base := exportRef(t, "vit", convert.ExportFP32)
	cand := exportRef(t, "vit", convert.ExportInt4)
	code, out := runCLI(t, "verify", base, cand, "--iters", "1", "--warmup", "0", "--samples", "2", "--no-memory",
		"--min-cosine", "0.9999999", "--json")
	if code != ExitGate {
		t.Fatalf("exit %d, want %d\n%s", code, ExitGate, out)
	}
	checkSchema(t, out)
	r := decodeReport(t, out)
	if r.LayerDiff == nil || r.LayerDiff.Error != "" || r.LayerDiff.Matched == 0 || len(r.Layers) != r.LayerDiff.Matched {
		t.Fatalf("layer diff %+v with %d layers", r.LayerDiff, len(r.Layers))
	}
	for i, l := range r.Layers {
		if l.Rank != i+1 || (i > 0 && l.Introduced > r.Layers[i-1].Introduced) {
			t.Fatalf("layers not ranked by introduced error: %+v", r.Layers)
		}
	}
	code, out = runCLI(t, "verify", base, cand, "--iters", "1", "--warmup", "0", "--samples", "2", "--no-memory", "--min-cosine", "0.9999999")
	if code != ExitGate || !strings.Contains(string(out), "### Layers that differ most") || !strings.Contains(string(out), r.Layers[0].Name) {
		t.Fatalf("Markdown without the layers:\n%s", out)
	}
	code, out = runCLI(t, "verify", base, cand, "--iters", "1", "--warmup", "0", "--samples", "2", "--no-memory", "--json")
	if code != ExitOK || decodeReport(t, out).LayerDiff != nil {
		t.Fatalf("passing run: exit %d, layer diff present", code)
	}
	code, out = runCLI(t, "verify", base, cand, "--iters", "1", "--warmup", "0", "--samples", "2", "--no-memory", "--layers", "--json")
	if code != ExitOK || len(decodeReport(t, out).Layers) == 0 {
		t.Fatalf("--layers: exit %d, no layers", code)
	}
}
