package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// Issue 17 case 12: an output that is a symlink to an empty directory is
// refused (Commit used to replace the link with a real directory), and both
// the link and its target are left alone.
func TestCreateDirRefusesSymlink(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	os.Mkdir(target, 0o755)
	link := filepath.Join(parent, "out")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateDir(link); !errors.Is(err, ErrNotDir) {
		t.Fatalf("CreateDir(symlink): %v, want ErrNotDir", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link changed: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 2 {
		t.Errorf("%d entries in the parent, want the link and its target", len(ents))
	}
}

// Issue 17 case 13: temporaries left by a process killed with SIGKILL are
// removed by the next CreateDir into the same parent, and reported; those of
// a live process, and other hidden names, are left alone.
func TestCreateDirRemovesStaleTemporaries(t *testing.T) {
	parent := t.TempDir()
	// A pid that is no longer running: a child that has exited and been
	// waited for.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no child process: %v", err)
	}
	dead := cmd.Process.Pid
	stale := []string{
		filepath.Join(parent, fmt.Sprintf(".model.tmp-%d-123", dead)),
		filepath.Join(parent, fmt.Sprintf(".other.unpack-%d-9", dead)),
	}
	keep := []string{
		filepath.Join(parent, fmt.Sprintf(".model.tmp-%d-5", os.Getppid())), // alive
		filepath.Join(parent, ".model.tmp-123456"),                          // not our naming
		filepath.Join(parent, ".hidden"),
	}
	old := time.Now().Add(-StaleAge - time.Minute)
	for _, p := range append(stale, keep...) {
		os.MkdirAll(filepath.Join(p, "sub"), 0o755)
		os.WriteFile(filepath.Join(p, "sub", "data"), []byte("x"), 0o644)
		os.Chtimes(filepath.Join(p, "sub"), old, old)
		os.Chtimes(p, old, old)
	}
	// A dead pid's temporary still being written (another pid namespace
	// sharing the directory): recent, so kept.
	recent := filepath.Join(parent, fmt.Sprintf(".model.tmp-%d-77", dead))
	os.MkdirAll(recent, 0o755)
	os.WriteFile(filepath.Join(recent, "model.safetensors"), []byte("x"), 0o644)
	os.Chtimes(recent, old, old)
	keep = append(keep, recent)
	var logged []string
	Logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	t.Cleanup(func() { Logf = nil })
	d, err := CreateDir(filepath.Join(parent, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	for _, p := range stale {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("stale %s not removed", p)
		}
	}
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if len(logged) != len(stale) {
		t.Errorf("logged %q, want one line per stale temporary", logged)
	}
	if base := filepath.Base(d.Tmp()); !strings.HasPrefix(base, fmt.Sprintf(".out.tmp-%d-", os.Getpid())) {
		t.Errorf("temporary %s does not carry the pid", base)
	}
}
