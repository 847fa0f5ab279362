package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Regression tests of issue 17 ("nothing silently wrong"): each reproduces a
// hostile case that used to end with a wrong answer and exit 0.

// copyDir copies the regular files of src (a fixture, read-only) into a new
// temporary directory that a test may damage.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// cancelBeforeCommit makes the next commit see a cancelled context, as if
// SIGINT landed after the last tensor was written.
func cancelBeforeCommit(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	testHookBeforeCommit = cancel
	t.Cleanup(func() { testHookBeforeCommit = func() {}; cancel() })
	return ctx
}

// Issue 17 case 2: a signal after the weights were written but before the
// commit must mean no output and a cancellation error (exit 130), not a
// committed artifact and exit 0.
func TestConvertSignalBeforeCommit(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	ctx := cancelBeforeCommit(t)
	parent := t.TempDir()
	_, err := Convert(ctx, src, filepath.Join(parent, "out"), Options{Precision: NF4, Threads: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Convert cancelled before commit: err = %v, want context.Canceled", err)
	}
	assertEmptyDir(t, parent)
}

func TestExportSignalBeforeCommit(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	ctx := cancelBeforeCommit(t)
	parent := t.TempDir()
	_, err := Export(ctx, src, filepath.Join(parent, "out"), ExportOptions{Precision: ExportFP32})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Export cancelled before commit: err = %v, want context.Canceled", err)
	}
	assertEmptyDir(t, parent)
}

// assertEmptyDir fails unless dir holds nothing (no output, no temporary).
func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s left in %s", e.Name(), dir)
	}
}
