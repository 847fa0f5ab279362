package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// testE2EDeterminism: output bytes do not depend on the run or on --threads
// (docs/reliability.md, "The rules"; STYLE.md habit 6), for convert, export
// and pack.
func testE2EDeterminism(t *testing.T, vit string) {
	t.Run("convert-threads", func(t *testing.T) {
		// The fixture has 32-wide tensors; a synthesized DeiT-Tiny (192/768
		// wide) gives the workers real blocks to split.
		srcs := []string{vit}
		if !testing.Short() {
			tiny := filepath.Join(t.TempDir(), "deit-tiny")
			qp(t, "synth", "--preset", "deit-tiny-patch16-224", "-o", tiny).ok(t)
			srcs = append(srcs, tiny)
		}
		for _, src := range srcs {
			for _, p := range []string{"fp16", "bf16", "int8", "int4", "nf4"} {
				dir := t.TempDir()
				a, b := filepath.Join(dir, "t1"), filepath.Join(dir, "t2")
				qp(t, "convert", src, "-o", a, "--precision", p, "--threads", "1").ok(t)
				qp(t, "convert", src, "-o", b, "--precision", p, "--threads", "2").ok(t)
				sameTree(t, a, b)
			}
		}
	})

	t.Run("export", func(t *testing.T) {
		for _, p := range []string{"fp32", "int8", "int4", "nf4"} {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			qp(t, "export", vit, "-o", a, "--precision", p).ok(t)
			qp(t, "export", vit, "-o", b, "--precision", p).ok(t)
			for _, f := range []string{"model.onnx", "model.onnx.data"} {
				if _, err := os.Stat(filepath.Join(a, f)); err != nil && f == "model.onnx" {
					t.Fatalf("%s: %v", p, err)
				}
			}
			sameTree(t, a, b)
		}
	})

	t.Run("pack", func(t *testing.T) {
		dir := t.TempDir()
		art := filepath.Join(dir, "art")
		qp(t, "convert", vit, "-o", art, "--precision", "nf4").ok(t)
		a, b := filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "b.tar.zst")
		qp(t, "pack", art, "-o", a).ok(t)
		qp(t, "pack", art, "-o", b).ok(t)
		ba, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		bb, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(ba) == 0 || !bytes.Equal(ba, bb) {
			t.Errorf("two packs of %s differ (%d and %d bytes)", art, len(ba), len(bb))
		}
	})
}
