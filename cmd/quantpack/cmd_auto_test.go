package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestAutoExitCodes: the command line maps --precision auto's outcomes to
// the documented exit codes, and an unreachable target (5) still leaves a
// complete export that records what it reached.
func TestAutoExitCodes(t *testing.T) {
	root := repoFixture(t, "trained")
	vit, calib := filepath.Join(root, "vit-28"), filepath.Join(root, "calib")
	dir := t.TempDir()
	if code := run([]string{"quantpack", "export", vit, "-o", filepath.Join(dir, "u"), "--precision", "auto"}); code != ExitUsage {
		t.Errorf("auto without a target: exit %d, want %d", code, ExitUsage)
	}
	if code := run([]string{"quantpack", "export", vit, "-o", filepath.Join(dir, "c"), "--precision", "auto", "--min-cosine", "0.9",
		"--candidates", "int4,nf4"}); code != ExitUsage {
		t.Errorf("int4 and nf4 candidates: exit %d, want %d", code, ExitUsage)
	}
	if code := run([]string{"quantpack", "sensitivity", vit, "-o", filepath.Join(dir, "s"), "--precision", "fp16"}); code != ExitUsage {
		t.Errorf("sensitivity at fp16: exit %d, want %d", code, ExitUsage)
	}
	orttest.Require(t)
	out := filepath.Join(dir, "auto")
	code := run([]string{"quantpack", "export", vit, "-o", out, "--precision", "auto", "--min-cosine", "0.9999999",
		"--candidates", "int4,int8", "--calib-images", calib, "--samples", "20"})
	if code != ExitGate {
		t.Fatalf("unreachable target: exit %d, want %d", code, ExitGate)
	}
	b, err := os.ReadFile(filepath.Join(out, "quantpack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m convert.ExportManifest
	if err := json.Unmarshal(b, &m); err != nil || m.Auto == nil || m.Auto.Reached || m.Auto.Stop != "unreachable" || len(m.Auto.Layers) != 18 {
		t.Fatalf("manifest auto record: %v %+v", err, m.Auto)
	}
	if _, err := os.Stat(filepath.Join(out, "model.onnx")); err != nil {
		t.Fatal(err)
	}
}
