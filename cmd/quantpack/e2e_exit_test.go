package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// testE2EExit checks every exit code of the CLI contract (docs/cli.md) on
// inputs that must produce it, that the message names the file, and
// (docs/reliability.md, "The rules") that a failing
// convert, export or unpack leaves neither its output nor a temp file.
func testE2EExit(t *testing.T, vit string) {
	dir := t.TempDir()
	model := filepath.Join(vit, "model.safetensors")
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen+8 >= uint64(len(data)) {
		t.Fatalf("fixture %s: header length %d leaves no tensor data", model, hlen)
	}

	// Damaged checkpoints: config.json from the fixture, model.safetensors
	// truncated inside the tensor data, truncated inside the header, or with a
	// header length larger than the file.
	damaged := func(name string, body []byte) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.CopyFile(t, filepath.Join(vit, "config.json"), filepath.Join(d, "config.json"))
		if err := os.WriteFile(filepath.Join(d, "model.safetensors"), body, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	truncData := damaged("trunc-data", data[:len(data)-len(data)/4])
	truncHeader := damaged("trunc-header", data[:8+hlen/2])
	long := append([]byte(nil), data...)
	binary.LittleEndian.PutUint64(long, uint64(len(data))*2)
	hugeHeader := damaged("header-len", long)

	swin := filepath.Join(dir, "swin")
	if err := os.MkdirAll(swin, 0o755); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(vit, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["architectures"], cfg["model_type"] = []string{"SwinForImageClassification"}, "swin"
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(swin, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.CopyFile(t, model, filepath.Join(swin, "model.safetensors"))

	// writes runs a command that must fail with code and must not leave its
	// output (parent/out) or anything else in a fresh parent directory.
	writes := func(t *testing.T, code int, names []string, cmd string, src string, extra ...string) {
		t.Helper()
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		args := append([]string{cmd, src, "-o", out}, extra...)
		qp(t, args...).wantCode(t, code, names...)
		emptyParent(t, parent, cmd+" "+src)
	}

	t.Run("usage", func(t *testing.T) {
		writes(t, ExitUsage, nil, "convert", vit, "--precision", "q3")
		writes(t, ExitUsage, nil, "export", vit, "--precision", "q3")
		writes(t, ExitUsage, nil, "convert", vit, "--precision", "nf4", "--no-such-flag")
		writes(t, ExitUsage, nil, "export", vit, "--precision", "fp32", "--no-such-flag")
		qp(t, "convert", vit, "--precision", "nf4").wantCode(t, ExitUsage)
		// awq needs calibration images and a 4-bit precision (issue 11).
		writes(t, ExitUsage, []string{"--calib-images"}, "convert", vit, "--precision", "int4", "--method", "awq")
		writes(t, ExitUsage, []string{"--calib-images"}, "export", vit, "--precision", "int4", "--method", "awq")
		writes(t, ExitUsage, []string{"int4 and nf4 only"}, "convert", vit, "--precision", "int8", "--method", "awq", "--calib-images", dir)
		writes(t, ExitUsage, []string{"nf4 has none"}, "convert", vit, "--precision", "nf4", "--method", "awq", "--awq-base", "hqq", "--calib-images", dir)
		// A flag the mode would ignore is refused, not dropped: a target
		// given without --precision auto was never checked.
		writes(t, ExitUsage, []string{"--min-cosine", "--precision auto"}, "export", vit, "--precision", "int8", "--min-cosine", "0.99")
		writes(t, ExitUsage, []string{"--budget"}, "convert", vit, "--precision", "int4", "--budget", "1m")
		writes(t, ExitUsage, []string{"--max-top1-drop"}, "convert", vit, "--precision", "int8", "--max-top1-drop", "0.5")
		writes(t, ExitUsage, []string{"--calib-images", "--method awq"}, "convert", vit, "--precision", "int4", "--calib-images", dir)
		writes(t, ExitUsage, []string{"--calib-samples"}, "export", vit, "--precision", "int8", "--calib-samples", "8")
		qp(t, "export", vit, "--precision", "fp32").wantCode(t, ExitUsage)
		qp(t, "unpack", filepath.Join(dir, "x.tar.zst")).wantCode(t, ExitUsage)
		for _, batch := range []string{"x", "0", "1,,8", "-1"} {
			qp(t, "verify", dir, dir, "--batch", batch).wantCode(t, ExitUsage)
		}
		qp(t, "verify", dir).wantCode(t, ExitUsage)
		qp(t, "no-such-command").wantCode(t, ExitUsage)
	})

	// An OUT that exists and is not empty is refused and left exactly as it
	// was: a mistyped -o must never cost the user a directory.
	t.Run("occupied-output", func(t *testing.T) {
		bundle := filepath.Join(dir, "occupied.tar.zst")
		art := filepath.Join(dir, "occupied-art")
		qp(t, "convert", vit, "-o", art, "--precision", "int8").ok(t)
		qp(t, "pack", art, "-o", bundle).ok(t)
		for _, args := range dirWriters(vit, bundle) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			keep := filepath.Join(out, "keep.txt")
			if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := qp(t, append(args, "-o", out)...)
			if r.code == 0 {
				t.Errorf("%s into a non-empty directory succeeded", args[0])
			}
			r.wantCode(t, r.code, out)
			if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
				t.Errorf("%s into a non-empty directory changed %s: %q %v", args[0], keep, b, err)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 1 {
				t.Errorf("%s into a non-empty directory left %d entries in it", args[0], len(ents))
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 1 {
				t.Errorf("%s into a non-empty directory left %d entries beside it", args[0], len(ents))
			}
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		for _, src := range []string{truncData, truncHeader, hugeHeader} {
			f := filepath.Join(src, "model.safetensors")
			qp(t, "inspect", src).wantCode(t, ExitInvalid, f)
			qp(t, "inspect", f).wantCode(t, ExitInvalid, f)
			writes(t, ExitInvalid, []string{f}, "convert", src, "--precision", "int8")
			writes(t, ExitInvalid, []string{f}, "export", src, "--precision", "fp32")
		}
		abuse := repoFixture(t, filepath.Join("safetensors", "misc", "syoyo-abuse-attempt-1.safetensors"))
		qp(t, "inspect", abuse).wantCode(t, ExitInvalid, abuse)
		writes(t, ExitInvalid, []string{abuse}, "convert", abuse, "--precision", "int8")
	})

	t.Run("corrupt-onnx", func(t *testing.T) {
		orttest.Require(t)
		good := filepath.Join(dir, "onnx-fp32")
		qp(t, "export", vit, "-o", good, "--precision", "fp32").ok(t)
		badFile := filepath.Join(dir, "bad.onnx")
		if err := os.WriteFile(badFile, []byte("this is not a protobuf \xff\xff\xff\xff"), 0o644); err != nil {
			t.Fatal(err)
		}
		badDir := filepath.Join(dir, "bad-export")
		if err := os.MkdirAll(badDir, 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.CopyFile(t, filepath.Join(good, "config.json"), filepath.Join(badDir, "config.json"))
		testenv.CopyFile(t, badFile, filepath.Join(badDir, "model.onnx"))
		qp(t, "verify", good, badFile, "--no-memory").wantCode(t, ExitInvalid, badFile)
		qp(t, "verify", badDir, good, "--no-memory").wantCode(t, ExitInvalid, badDir)
	})

	t.Run("corrupt-bundle", func(t *testing.T) {
		art, bundle := filepath.Join(dir, "art"), filepath.Join(dir, "good.tar.zst")
		qp(t, "convert", vit, "-o", art, "--precision", "int8").ok(t)
		qp(t, "pack", art, "-o", bundle).ok(t)
		good, err := os.ReadFile(bundle)
		if err != nil {
			t.Fatal(err)
		}
		// One byte flipped in the first frame, in the middle and in the
		// trailing sha256 frame: each must be caught.
		for _, off := range []int{100, len(good) / 2, len(good) - 10} {
			bad := append([]byte(nil), good...)
			bad[off] ^= 0xff
			f := filepath.Join(t.TempDir(), "flipped.tar.zst")
			if err := os.WriteFile(f, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			qp(t, "check", f).wantCode(t, ExitInvalid, f)
			writes(t, ExitInvalid, []string{f}, "unpack", f)
		}
	})

	t.Run("unsupported", func(t *testing.T) {
		writes(t, ExitUnsupported, []string{swin}, "convert", swin, "--precision", "int8")
		writes(t, ExitUnsupported, []string{swin}, "export", swin, "--precision", "fp32")
	})

	exports := func(t *testing.T) (string, string) {
		t.Helper()
		d := t.TempDir()
		e32, e8 := filepath.Join(d, "fp32"), filepath.Join(d, "int8")
		qp(t, "export", vit, "-o", e32, "--precision", "fp32").ok(t)
		qp(t, "export", vit, "-o", e8, "--precision", "int8").ok(t)
		return e32, e8
	}
	fast := []string{"--no-memory", "--iters", "2", "--warmup", "0"}

	t.Run("gate", func(t *testing.T) {
		orttest.Require(t)
		e32, e8 := exports(t)
		// A cosine of exactly 1 (int8 logits differ from fp32 ones) and a
		// size ratio of 1% cannot be met. (A cosine above 1 is a usage
		// error, exit 2: issue 17 case 14.)
		qp(t, append([]string{"verify", e32, e8, "--min-cosine", "1"}, fast...)...).wantCode(t, ExitGate, "min-cosine")
		qp(t, append([]string{"verify", e32, e8, "--max-size-ratio", "0.01"}, fast...)...).wantCode(t, ExitGate, "max-size-ratio")
		// And the JSON still comes out, with the failed gate listed.
		r := qp(t, append([]string{"verify", e32, e8, "--min-cosine", "1", "--json"}, fast...)...)
		r.wantCode(t, ExitGate)
		if failed, _ := jpath(r.json(t), "gates.failed"); failed == nil || len(failed.([]any)) == 0 {
			t.Errorf("gates.failed = %v, want the min-cosine gate", failed)
		}
	})

	// Runtime unavailable needs no runtime: these run where ORT is absent too.
	t.Run("runtime", func(t *testing.T) {
		e32, e8 := exports(t)
		qp(t, append([]string{"verify", e32, e8, "--ort-lib", "/nonexistent.so"}, fast...)...).wantCode(t, ExitRuntime, "/nonexistent.so")
		qpEnv(t, []string{"ONNXRUNTIME_SHARED_LIBRARY_PATH=/nonexistent"}, append([]string{"verify", e32, e8}, fast...)...).
			wantCode(t, ExitRuntime, "/nonexistent")
		if r := qp(t, append([]string{"verify", e32, e8, "--device", "cuda"}, fast...)...); r.code == 0 {
			t.Log("--device cuda succeeded: this machine has CUDA, exit 6 not testable here")
		} else {
			r.wantCode(t, ExitRuntime)
		}
	})
}
