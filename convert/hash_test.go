package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHashSourcesCancel: the source hasher stops inside a file when its
// context is cancelled (issue 12 defect 13: it read every file to the end
// after a worker had failed). The file is a sparse 1 TiB regular file (the
// hasher refuses devices such as /dev/zero): hashing it would take many
// minutes, so only cancellation can stop it within the test's limit.
func TestHashSourcesCancel(t *testing.T) {
	big := filepath.Join(t.TempDir(), "model.safetensors")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		f.Close()
		t.Skipf("no sparse 1 TiB file here: %v", err)
	}
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	wait := hashSources(ctx, []string{big})
	time.Sleep(20 * time.Millisecond)
	cancel()
	done := make(chan error, 1)
	go func() { _, err := wait(); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hashing did not stop 10 s after its context was cancelled")
	}
}
