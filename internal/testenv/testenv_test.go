package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCopyDir: the copy has src's base name, the same regular files with the
// same bytes, no subdirectories, and changing it leaves src as it was.
func TestCopyDir(t *testing.T) {
	src := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"config.json": "{}", "model.safetensors": "weights", "sub/x": "nested"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	dst := CopyDir(t, src)
	if filepath.Base(dst) != "model" || dst == src {
		t.Fatalf("copy at %s", dst)
	}
	ents, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("copy holds %d entries, want the 2 regular files", len(ents))
	}
	if b, err := os.ReadFile(filepath.Join(dst, "model.safetensors")); err != nil || string(b) != "weights" {
		t.Fatalf("copied file: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "config.json"), []byte("changed"), 0o644); err != nil {
		t.Fatalf("copy of a read-only file is not writable: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "config.json")); string(b) != "{}" {
		t.Fatalf("source changed: %q", b)
	}
}
