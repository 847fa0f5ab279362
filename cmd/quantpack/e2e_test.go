package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestE2E drives the real quantpack binary through the CLI contract of
// docs/cli.md and the rules of docs/reliability.md: the happy path, every exit
// code, signals, nothing left behind on failure, deterministic bytes and the
// help text. Each group is a subtest (go test -run 'TestE2E/exit').
func TestE2E(t *testing.T) {
	t.Cleanup(e2eCleanup)
	e2eBinary(t)
	t.Run("help", testE2EHelp)

	vit := repoFixture(t, filepath.Join("reference", "vit"))
	t.Run("happy", func(t *testing.T) { testE2EHappy(t, vit) })
	t.Run("exit", func(t *testing.T) { testE2EExit(t, vit) })
	t.Run("newcomer", func(t *testing.T) { testE2ENewcomer(t, vit) })
	t.Run("signal", testE2ESignals)
	t.Run("reliability", func(t *testing.T) { testE2EReliability(t, vit) })
	t.Run("determinism", func(t *testing.T) { testE2EDeterminism(t, vit) })
	t.Run("hub", func(t *testing.T) { testE2EHub(t, vit) })
}

// testE2EHelp: every command's --help exits 0, shows an example and the exit
// code table (STYLE.md habit 10; restic documents exit codes the same way).
func testE2EHelp(t *testing.T) {
	names := []string{""}
	for _, c := range newApp().Commands {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d commands registered: %v", len(names)-1, names[1:])
	}
	for _, name := range names {
		args := []string{"--help"}
		if name != "" {
			args = []string{name, "--help"}
		}
		t.Run("cmd="+name, func(t *testing.T) {
			r := qp(t, args...).ok(t)
			help := string(r.stdout)
			if name != "" && !strings.Contains(help, "Example") {
				t.Errorf("%s --help has no Example:\n%s", name, help)
			}
			for _, line := range strings.Split(exitCodeHelp, "\n") {
				if line = strings.TrimSpace(line); !strings.Contains(help, line) {
					t.Errorf("%q --help lacks the exit code line %q", name, line)
				}
			}
		})
	}
}

func testE2EHappy(t *testing.T, vit string) {
	var cfg struct{ Architectures []string }
	b, err := os.ReadFile(filepath.Join(vit, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil || len(cfg.Architectures) == 0 {
		t.Fatalf("fixture config.json: %v %v", err, cfg.Architectures)
	}
	st, err := os.Stat(filepath.Join(vit, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	var params float64
	t.Run("inspect", func(t *testing.T) {
		m := qp(t, "inspect", vit, "--json").ok(t).json(t)
		if v, _ := jpath(m, "architecture"); v != cfg.Architectures[0] {
			t.Errorf("architecture = %v, want %s (config.json)", v, cfg.Architectures[0])
		}
		params = jnum(t, m, "totals.params")
		if params <= 0 {
			t.Errorf("totals.params = %v", params)
		}
	})

	t.Run("convert", func(t *testing.T) {
		ratios := map[string]float64{}
		for _, p := range []string{"fp16", "bf16", "int8", "int4", "nf4"} {
			out := filepath.Join(t.TempDir(), p)
			args := []string{"convert", vit, "-o", out, "--precision", p, "--json"}
			if p == "int4" {
				// The 32-wide fixture's rows are shorter than int4's default
				// block of 128, which would pad each to 128 codes.
				args = append(args, "--block-size", "32")
			}
			m := qp(t, args...).ok(t).json(t)
			in, outB := jnum(t, m, "bytes_in"), jnum(t, m, "bytes_out")
			ratio, bpp := jnum(t, m, "ratio"), jnum(t, m, "bits_per_param")
			// bytes_in is the source checkpoint file; bytes_out the artifact's
			// model.safetensors, measured here independently on disk.
			if in != float64(st.Size()) {
				t.Errorf("%s: bytes_in %v, source file has %d bytes", p, in, st.Size())
			}
			ost, err := os.Stat(filepath.Join(out, "model.safetensors"))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if outB != float64(ost.Size()) {
				t.Errorf("%s: bytes_out %v, %s/model.safetensors has %d bytes", p, outB, out, ost.Size())
			}
			// ratio and bits/param are quotients of integers printed as JSON
			// floats; 1e-9 relative covers the decimal rounding of encoding/json
			// (shortest round-trip form, exact to ~1e-16) with a wide margin.
			if !closeRel(ratio, outB/in, 1e-9) {
				t.Errorf("%s: ratio %v, bytes_out/bytes_in = %v", p, ratio, outB/in)
			}
			if params > 0 && !closeRel(bpp, 8*outB/params, 1e-9) {
				t.Errorf("%s: bits_per_param %v, 8·bytes_out/params = %v", p, bpp, 8*outB/params)
			}
			if ratio <= 0 || ratio >= 1 {
				t.Errorf("%s: ratio %v not in (0,1)", p, ratio)
			}
			ratios[p] = ratio
			qp(t, "check", out).ok(t)
		}
		// Orders that hold for any model: fewer bits, smaller artifact.
		// (nf4 is left out: on a 32-wide fixture its per-tensor quant_state
		// and double-quant tables outweigh the saved bits.)
		if !(ratios["int4"] < ratios["int8"] && ratios["int8"] < ratios["fp16"]) {
			t.Errorf("ratios not ordered int4 < int8 < fp16: %v", ratios)
		}
	})

	t.Run("export-verify", func(t *testing.T) {
		orttest.Require(t)
		dir := t.TempDir()
		e32, e8 := filepath.Join(dir, "fp32"), filepath.Join(dir, "int8")
		qp(t, "export", vit, "-o", e32, "--precision", "fp32").ok(t)
		qp(t, "export", vit, "-o", e8, "--precision", "int8").ok(t)
		images := labelledImages(t, dir)
		m := qp(t, "verify", e32, e8, "--json", "--iters", "5", "--warmup", "1", "--images", images).ok(t).json(t)
		checkVerifyContract(t, m, e32, e8)
	})

	t.Run("bundle", func(t *testing.T) {
		dir := t.TempDir()
		art, bundle, un := filepath.Join(dir, "art"), filepath.Join(dir, "b.tar.zst"), filepath.Join(dir, "un")
		qp(t, "convert", vit, "-o", art, "--precision", "int8").ok(t)
		qp(t, "pack", art, "-o", bundle).ok(t)
		qp(t, "check", bundle).ok(t)
		qp(t, "unpack", bundle, "-o", un).ok(t)
		qp(t, "check", un).ok(t)
		sameTree(t, art, un)
		// Outputs get the permissions of any directory the user makes (umask
		// applied), not os.MkdirTemp's private 0700.
		ref := filepath.Join(dir, "mkdir")
		if err := os.Mkdir(ref, 0o755); err != nil {
			t.Fatal(err)
		}
		want := dirPerm(t, ref)
		for _, d := range []string{art, un} {
			if got := dirPerm(t, d); got != want {
				t.Errorf("%s has mode %v, a plain mkdir here gets %v", d, got, want)
			}
		}
	})

	t.Run("study", func(t *testing.T) {
		orttest.Require(t)
		rep := filepath.Join(t.TempDir(), "report")
		qp(t, "study", vit, "-o", rep, "--precisions", "fp32,int8", "--iters", "3", "--warmup", "1", "--no-memory").ok(t)
		md, err := os.ReadFile(filepath.Join(rep, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"fp32", "int8"} {
			if !strings.Contains(strings.ToLower(string(md)), p) {
				t.Errorf("report.md does not mention %s", p)
			}
		}
		for _, f := range []string{"report.csv", "report.json", "heatmap.png"} {
			if _, err := os.Stat(filepath.Join(rep, f)); err != nil {
				t.Error(err)
			}
		}
	})
}

// labelledImages builds a small ImageFolder (class dirs named after the
// fixture's id2label) from the shared test images, so verify reports accuracy.
func labelledImages(t *testing.T, dir string) string {
	src := repoFixture(t, "images")
	root := filepath.Join(dir, "images")
	for class, files := range map[string][]string{
		"LABEL_1": {"astronaut.png", "camera.png"},
		"LABEL_2": {"coffee.png", "rocket.jpg"},
	} {
		if err := os.MkdirAll(filepath.Join(root, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			testenv.CopyFile(t, filepath.Join(src, f), filepath.Join(root, class, f))
		}
	}
	return root
}

// checkVerifyContract checks the members docs/cli.md promises in verify
// --json and recomputes the derived ones from their parts.
func checkVerifyContract(t *testing.T, m map[string]any, base, cand string) {
	t.Helper()
	for _, k := range []string{"device", "ort_version", "gates.passed", "gates.failed"} {
		if _, ok := jpath(m, k); !ok {
			t.Errorf("verify --json lacks %q", k)
		}
	}
	for _, side := range []string{"baseline", "candidate"} {
		for _, k := range []string{"latency_ms.p50", "latency_ms.p90", "latency_ms.p99", "throughput_sps", "peak_rss_mb", "size_bytes"} {
			if v := jnum(t, m, side+"."+k); !(v > 0) {
				t.Errorf("%s.%s = %v, want > 0", side, k, v)
			}
		}
		p50, p90, p99 := jnum(t, m, side+".latency_ms.p50"), jnum(t, m, side+".latency_ms.p90"), jnum(t, m, side+".latency_ms.p99")
		if !(p50 <= p90 && p90 <= p99) {
			t.Errorf("%s percentiles out of order: %v %v %v", side, p50, p90, p99)
		}
	}
	for _, k := range []string{"top1", "top5", "cosine_mean", "cosine_min", "max_abs"} {
		jnum(t, m, "agreement."+k)
	}
	if c, cmin := jnum(t, m, "agreement.cosine_mean"), jnum(t, m, "agreement.cosine_min"); cmin > c || c > 1+1e-12 {
		t.Errorf("cosine_min %v, cosine_mean %v", cmin, c)
	}
	bt, ct := jnum(t, m, "accuracy.baseline_top1"), jnum(t, m, "accuracy.candidate_top1")
	if d := jnum(t, m, "accuracy.drop"); !closeAbs(d, bt-ct, 1e-9) && !closeAbs(d, 100*(bt-ct), 1e-9) {
		t.Errorf("accuracy.drop %v, baseline %v − candidate %v", d, bt, ct)
	}
	// size_bytes is the ONNX files on disk; size_ratio and speedup are the
	// quotients the contract defines (1e-9 relative: JSON float rounding).
	sb, sc := jnum(t, m, "baseline.size_bytes"), jnum(t, m, "candidate.size_bytes")
	if want := onnxBytes(t, base); sb != want {
		t.Errorf("baseline.size_bytes %v, %s holds %v bytes of model.onnx*", sb, base, want)
	}
	if want := onnxBytes(t, cand); sc != want {
		t.Errorf("candidate.size_bytes %v, %s holds %v bytes of model.onnx*", sc, cand, want)
	}
	if r := jnum(t, m, "size_ratio"); !closeRel(r, sc/sb, 1e-9) {
		t.Errorf("size_ratio %v, candidate/baseline = %v", r, sc/sb)
	}
	if s, want := jnum(t, m, "speedup"), jnum(t, m, "baseline.latency_ms.p50")/jnum(t, m, "candidate.latency_ms.p50"); !closeRel(s, want, 1e-9) {
		t.Errorf("speedup %v, baseline p50 / candidate p50 = %v", s, want)
	}
}

func dirPerm(t *testing.T, dir string) os.FileMode {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func onnxBytes(t *testing.T, dir string) float64 {
	t.Helper()
	var n int64
	for _, f := range []string{"model.onnx", "model.onnx.data"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += st.Size()
		}
	}
	return float64(n)
}

func closeRel(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b)) }
func closeAbs(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
