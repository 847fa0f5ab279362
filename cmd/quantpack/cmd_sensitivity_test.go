package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/tune"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestSensitivityCommand: the command writes the four report files, shares
// --threads among --workers as asked (1 worker on 2 threads: one session
// with two intra-op threads), leaves no temporary folder behind, and
// rejects a negative --threads as usage.
func TestSensitivityCommand(t *testing.T) {
	root := repoFixture(t, "trained")
	vit, calib := filepath.Join(root, "vit-28"), filepath.Join(root, "calib")
	dir := t.TempDir()
	if code := run([]string{"quantpack", "sensitivity", vit, "-o", filepath.Join(dir, "n"), "--precision", "int4", "--threads", "-1"}); code != ExitUsage {
		t.Errorf("--threads -1: exit %d, want %d", code, ExitUsage)
	}
	orttest.Require(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(dir, "s")
	if code := run([]string{"quantpack", "sensitivity", vit, "-o", out, "--precision", "int4", "--calib-images", calib,
		"--samples", "10", "--workers", "1", "--threads", "2"}); code != ExitOK {
		t.Fatalf("sensitivity: exit %d", code)
	}
	for _, f := range []string{tune.FileMarkdown, tune.FileCSV, tune.FileJSON, tune.FilePNG} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, tune.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	var r tune.SensitivityReport
	if err := json.Unmarshal(b, &r); err != nil || len(r.Layers) != 18 || r.Timing.Workers != 1 || r.Timing.Threads != 2 {
		t.Fatalf("report: %v, %d layers, %d workers × %d threads", err, len(r.Layers), r.Timing.Workers, r.Timing.Threads)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
