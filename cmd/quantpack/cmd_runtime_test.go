package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRuntimeFlagsUsage: study and verify share their runtime flags and
// reject each bad value alike, with exit 2, before loading anything; study
// leaves no report directory behind.
func TestRuntimeFlagsUsage(t *testing.T) {
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.txt")
	if err := os.WriteFile(labels, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"--batch", "1,x"},
		{"--batch", "0"},
		{"--batch", "1,70000"},
		{"--device", "tpu"},
		{"--ep-library", "x.so"},
		{"--iters", "0"},
		{"--warmup", "-1"},
		{"--threads", "-1"},
		{"--samples", "0"},
		{"--labels", labels},
		{"--seed", "-1"},
	} {
		if code, _ := runCLI(t, append([]string{"verify", dir, dir}, bad...)...); code != ExitUsage {
			t.Errorf("verify %q: exit %d, want %d", bad, code, ExitUsage)
		}
		out := filepath.Join(dir, "report")
		if code, _ := runCLI(t, append([]string{"study", dir, "-o", out}, bad...)...); code != ExitUsage {
			t.Errorf("study %q: exit %d, want %d", bad, code, ExitUsage)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("study %q left %s: %v", bad, out, err)
		}
	}
}

// TestStudyStaticUsage: the int8-static column needs calibration images
// (exit 2 naming it), a missing --calib-images folder is exit 3, and a bad
// --calib-samples exit 2 — each before a cell runs or the report
// directory is made.
func TestStudyStaticUsage(t *testing.T) {
	requireORT(t)
	src := repoFixture(t, filepath.Join("reference", "vit"))
	dir := t.TempDir()
	out := filepath.Join(dir, "report")
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--precisions", "fp32,int8-static"}, ExitUsage},
		{[]string{"--precisions", "fp32,int3"}, ExitUsage},
		{[]string{"--calib-images", filepath.Join(dir, "missing")}, ExitInvalid},
		{[]string{"--calib-images", dir, "--calib-samples", "-1"}, ExitUsage},
	} {
		if code, _ := runCLI(t, append([]string{"study", src, "-o", out, "--no-memory"}, c.args...)...); code != c.want {
			t.Errorf("study %q: exit %d, want %d", c.args, code, c.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("study %q left %s: %v", c.args, out, err)
		}
	}
}
