package atomicfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	if err := WriteFile(p, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "hello" {
		t.Fatalf("got %q", b)
	}
	f, err := Create(filepath.Join(dir, "aborted.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("partial"))
	if Pending() != 1 {
		t.Fatalf("pending = %d", Pending())
	}
	f.Abort()
	f.Abort()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "out.bin" {
		t.Fatalf("leftovers: %v", ents)
	}
	if Pending() != 0 {
		t.Fatalf("pending after abort = %d", Pending())
	}
}

func TestRemoveAll(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("data"))
	RemoveAll()
	if _, err := os.Stat(f.File.Name()); !os.IsNotExist(err) {
		t.Fatalf("temp file survived RemoveAll: %v", err)
	}
}

func TestCreateInMissingDir(t *testing.T) {
	if _, err := Create(filepath.Join(t.TempDir(), "nope", "x")); err == nil {
		t.Fatal("expected error for missing directory")
	}
}

func TestDir(t *testing.T) {
	parent := t.TempDir()
	final := filepath.Join(parent, "artifact")
	d, err := CreateDir(final)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(d.Join("a"), []byte("x"), 0o644)
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Fatal("final dir visible before commit")
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(final, "a")); string(b) != "x" {
		t.Fatal("content lost")
	}
	if fi, err := os.Stat(final); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("committed directory mode %v, want 0755", fi.Mode().Perm())
	}
	if _, err := CreateDir(final); err == nil {
		t.Fatal("non-empty destination accepted")
	}
	d2, err := CreateDir(filepath.Join(parent, "other"))
	if err != nil {
		t.Fatal(err)
	}
	RemoveAll()
	if _, err := os.Stat(d2.Tmp()); !os.IsNotExist(err) {
		t.Fatal("temp dir survived RemoveAll")
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Fatalf("leftovers: %v", ents)
	}
}

func TestDirCreatesParents(t *testing.T) {
	final := filepath.Join(t.TempDir(), "a", "b", "artifact")
	d, err := CreateDir(final)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(final); err != nil || !fi.IsDir() {
		t.Fatalf("artifact dir not created: %v", err)
	}
}

// CommitContext is the last cancellation check: a cancelled context means
// neither the destination nor the temporary exists afterwards.
func TestCommitContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	parent := t.TempDir()
	f, err := Create(filepath.Join(parent, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	if err := f.CommitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("File.CommitContext: %v, want context.Canceled", err)
	}
	d, err := CreateDir(filepath.Join(parent, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CommitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Dir.CommitContext: %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 || Pending() != 0 {
		t.Errorf("left %d entries, %d pending", len(ents), Pending())
	}
}
