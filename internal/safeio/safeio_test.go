package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
)

// Issue 17 cases 8 and 9: a FIFO or device where a file is expected is
// refused at once (it used to block in open forever), and a config that is a
// symlink to /dev/zero is refused at the limit (it used to exhaust memory).
func TestRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, make([]byte, 1025), 0o644)
	cases := []struct {
		path string
		want error
	}{
		{fifo, ErrNotRegular},
		{zero, ErrNotRegular},
		{dir, ErrNotRegular},
		{big, ErrTooLarge},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() {
			_, err := ReadFile(c.path, 1024)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, c.want) || fault.ClassOf(err) != fault.Invalid {
				t.Errorf("ReadFile(%s): %v, want %v (invalid)", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ReadFile(%s) blocked", c.path)
		}
	}
	ok := filepath.Join(dir, "ok.json")
	os.WriteFile(ok, []byte("{}"), 0o644)
	link := filepath.Join(dir, "link.json")
	os.Symlink(ok, link)
	for _, p := range []string{ok, link} {
		if b, err := ReadFile(p, 2); err != nil || string(b) != "{}" {
			t.Errorf("ReadFile(%s) = %q, %v", p, b, err)
		}
	}
}
