package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// bombBundle is a tiny bundle whose manifest declares one file of size
// bytes (the entry itself is absent: every check below happens before it).
func bombBundle(t *testing.T, size int64) string {
	t.Helper()
	man, err := json.Marshal(map[string]any{"files": []map[string]any{
		{"path": "model.safetensors", "size": size, "sha256": strings.Repeat("0", 64)}}})
	if err != nil {
		t.Fatal(err)
	}
	return writeBundle(t, compress(t, makeTar(t, manifestEntry(man))))
}

// Issue 17 case 15: a bundle of a few hundred bytes declaring 5 GiB is
// refused by the compression-ratio limit before anything is written (it
// used to pass under the 64 GiB default of MaxBytes); MaxRatio raises the
// limit; and a declared total beyond the free disk space is refused too.
func TestUnpackRefusesBombs(t *testing.T) {
	bomb := bombBundle(t, 5<<30)
	for _, name := range []string{"unpack", "check"} {
		parent := t.TempDir()
		var err error
		if name == "unpack" {
			_, err = Unpack(context.Background(), bomb, filepath.Join(parent, "out"), UnpackOptions{})
		} else {
			_, err = Check(context.Background(), bomb, UnpackOptions{})
		}
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "compression ratio") {
			t.Errorf("%s of a 5 GiB bomb: %v, want ErrTooLarge (compression ratio)", name, err)
		}
		if names := dirNames(t, parent); len(names) != 0 {
			t.Errorf("%s left %v", name, names)
		}
	}
	// Raised, the ratio passes and the next check (the missing entry, or
	// the disk) decides.
	_, err := Check(context.Background(), bomb, UnpackOptions{MaxRatio: 1e12})
	if errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxRatio 1e12 still refused: %v", err)
	}

	parent := t.TempDir()
	free, ok := freeBytes(parent)
	if !ok {
		t.Skip("free space unknown here")
	}
	huge := bombBundle(t, free+1<<30)
	_, err = Unpack(context.Background(), huge, filepath.Join(parent, "out"), UnpackOptions{MaxRatio: 1e18, MaxBytes: 1 << 62})
	if !errors.Is(err, ErrNoSpace) {
		t.Errorf("bundle larger than the free space: %v, want ErrNoSpace", err)
	}
	if names := dirNames(t, parent); len(names) != 0 {
		t.Errorf("left %v", names)
	}
}
