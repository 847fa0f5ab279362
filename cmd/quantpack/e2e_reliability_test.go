package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/testenv"
)

// testE2EReliability runs the hostile cases of issue 17 that need the real
// binary: what the user sees (exit code, message, stdout) and what is left
// on disk.
func testE2EReliability(t *testing.T, vit string) {
	// A checkpoint directory: vit's config.json and tensors, with one file
	// replaced by a caller.
	checkpoint := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "src")
		os.MkdirAll(d, 0o755)
		for _, f := range []string{"config.json", "model.safetensors"} {
			testenv.CopyFile(t, filepath.Join(vit, f), filepath.Join(d, f))
		}
		return d
	}
	// refused runs convert, export and inspect on src and wants code, the
	// message naming file, and nothing written.
	refused := func(t *testing.T, src, file string, code int) {
		t.Helper()
		qp(t, "inspect", src).wantCode(t, code, file)
		for _, args := range [][]string{{"convert", src, "--precision", "int8"}, {"export", src, "--precision", "fp32"}} {
			parent := t.TempDir()
			qp(t, append(args, "-o", filepath.Join(parent, "out"))...).wantCode(t, code, file)
			emptyParent(t, parent, args[0]+" of "+src)
		}
	}

	// Case 9: a FIFO where model.safetensors is expected blocked open()
	// forever; now it is refused at once.
	t.Run("fifo-model", func(t *testing.T) {
		src := checkpoint(t)
		m := filepath.Join(src, "model.safetensors")
		os.Remove(m)
		if err := syscall.Mkfifo(m, 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		refused(t, src, m, ExitInvalid)
	})

	// Case 8: config.json or preprocessor_config.json a symlink to
	// /dev/zero exhausted memory; now it is refused.
	t.Run("dev-zero-config", func(t *testing.T) {
		for _, name := range []string{"config.json", "preprocessor_config.json"} {
			src := checkpoint(t)
			p := filepath.Join(src, name)
			os.Remove(p)
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"convert", src, "--precision", "fp16"}, {"export", src, "--precision", "fp32"}} {
				parent := t.TempDir()
				qp(t, append(args, "-o", filepath.Join(parent, "out"))...).wantCode(t, ExitInvalid, p)
				emptyParent(t, parent, args[0]+" with "+name+" → /dev/zero")
			}
		}
	})

	// Case 7: NaN and ±Inf at fp16 appear in the text, the --json summary
	// and quantpack.json, with a warning; --fail-on-nonfinite exits 3.
	t.Run("nonfinite", func(t *testing.T) {
		src := checkpoint(t)
		const name = "vit.encoder.layer.0.attention.attention.query.weight"
		m := filepath.Join(src, "model.safetensors")
		ck, err := safetensors.OpenCheckpoint(m)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := ck.Lookup(name)
		ck.Close()
		if !ok {
			t.Fatalf("fixture lacks %s", name)
		}
		data, _ := os.ReadFile(m)
		for i := int64(0); i < 8; i++ {
			binary.LittleEndian.PutUint32(data[e.Offset+4*i:], math.Float32bits(float32(math.NaN())))
		}
		os.WriteFile(m, data, 0o644)

		out := filepath.Join(t.TempDir(), "out")
		r := qp(t, "convert", src, "-o", out, "--precision", "fp16", "--json").ok(t)
		js := r.json(t)
		if jnum(t, js, "non_finite_tensors") != 1 || jnum(t, js, "non_finite.source.nan") != 8 {
			t.Errorf("--json: %s", r.stdout)
		}
		if v, _ := jpath(js, "min_sqnr_db"); v != nil {
			t.Errorf("min_sqnr_db %v with a NaN tensor, want null", v)
		}
		if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, name) {
			t.Errorf("no warning naming %s on stderr: %s", name, r.stderr)
		}
		man, _ := os.ReadFile(filepath.Join(out, "quantpack.json"))
		if !strings.Contains(string(man), `"non_finite"`) {
			t.Error("quantpack.json does not record the non-finite values")
		}
		text := qp(t, "convert", src, "-o", filepath.Join(t.TempDir(), "out"), "--precision", "fp16").ok(t)
		if !strings.Contains(string(text.stdout), "NaN/Inf") {
			t.Errorf("text output does not show the NaN tensor:\n%s", text.stdout)
		}
		parent := t.TempDir()
		qp(t, "convert", src, "-o", filepath.Join(parent, "out"), "--precision", "fp16", "--fail-on-nonfinite").wantCode(t, ExitInvalid, name)
		emptyParent(t, parent, "convert --fail-on-nonfinite")
	})

	// Case 12: -o a symlink to an empty directory is refused by every
	// command that writes a directory, as unpack refuses it; the link and
	// its target stay as they were.
	t.Run("output-symlink", func(t *testing.T) {
		parent := t.TempDir()
		art := filepath.Join(parent, "art")
		qp(t, "convert", vit, "-o", art, "--precision", "fp16").ok(t)
		bundle := filepath.Join(parent, "art.tar.zst")
		qp(t, "pack", art, "-o", bundle).ok(t)
		for _, args := range dirWriters(vit, bundle) {
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			os.Mkdir(target, 0o755)
			link := filepath.Join(dir, "out")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			qp(t, append(args, "-o", link)...).wantCode(t, ExitUsage, link)
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s replaced the -o symlink", args[0])
			}
			if ents, _ := os.ReadDir(target); len(ents) != 0 {
				t.Errorf("%s wrote into the link's target", args[0])
			}
		}
	})

	// Case 13: a temporary left by a SIGKILLed run is removed by the next
	// run into the same parent, which says so on stderr.
	t.Run("stale-temporaries", func(t *testing.T) {
		child := exec.Command("true")
		if err := child.Run(); err != nil {
			t.Skipf("no child process: %v", err)
		}
		parent := t.TempDir()
		stale := filepath.Join(parent, fmt.Sprintf(".out.tmp-%d-42", child.Process.Pid))
		os.MkdirAll(stale, 0o755)
		os.WriteFile(filepath.Join(stale, "model.safetensors"), make([]byte, 4096), 0o644)
		old := time.Now().Add(-atomicfile.StaleAge - time.Minute)
		os.Chtimes(filepath.Join(stale, "model.safetensors"), old, old)
		os.Chtimes(stale, old, old)
		r := qp(t, "convert", vit, "-o", filepath.Join(parent, "out"), "--precision", "int8").ok(t)
		if _, err := os.Lstat(stale); !os.IsNotExist(err) {
			t.Errorf("stale %s still there", stale)
		}
		if !strings.Contains(r.stderr, stale) || !strings.Contains(r.stderr, "no longer running") {
			t.Errorf("stderr does not report the removal: %s", r.stderr)
		}
	})

	// Case 3: convert of an int8 artifact to nf4 exits 4 saying what the
	// input is; --dequantize-input converts its reconstruction and says so
	// in quantpack.json.
	t.Run("quantized-input", func(t *testing.T) {
		art := filepath.Join(t.TempDir(), "int8")
		qp(t, "convert", vit, "-o", art, "--precision", "int8").ok(t)
		parent := t.TempDir()
		out := filepath.Join(parent, "nf4")
		qp(t, "convert", art, "-o", out, "--precision", "nf4").wantCode(t, ExitUnsupported, art, "already quantized", "bnb-int8")
		emptyParent(t, parent, "convert of a quantized input")
		qp(t, "convert", art, "-o", out, "--precision", "nf4", "--dequantize-input").ok(t)
		man, _ := os.ReadFile(filepath.Join(out, "quantpack.json"))
		if !strings.Contains(string(man), `"dequantized"`) || !strings.Contains(string(man), `"bnb-int8"`) {
			t.Error("quantpack.json does not record the dequantization")
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("%d entries beside the output, want only it", len(ents))
		}
	})
}
