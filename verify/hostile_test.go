package verify

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/hfconfig"
	"github.com/quantpack/quantpack/internal/safeio"
)

// Issue 17 cases 8 and 9 inside --images: a FIFO named like an image in a
// class folder is refused at once (open used to block forever), and a
// preprocessor_config.json that is a symlink to /dev/zero is refused (it
// used to be read until memory ran out).
func TestHostileImageFolderFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cat"), 0o755)
	fifo := filepath.Join(dir, "cat", "x.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := DecodeImage(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, safeio.ErrNotRegular) {
			t.Errorf("DecodeImage(FIFO): %v, want ErrNotRegular", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DecodeImage blocked on a FIFO")
	}
	zero := filepath.Join(dir, "preprocessor_config.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if _, err := hfconfig.ReadCapped(zero, 1<<20); !errors.Is(err, safeio.ErrNotRegular) {
		t.Errorf("preprocessor_config.json → /dev/zero: %v, want ErrNotRegular", err)
	}
}
