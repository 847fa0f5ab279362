package convert

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestHashSourcesCancel: the source hasher stops inside a file when its
// context is cancelled (issue 12 defect 13: it read every file to the end
// after a worker had failed). /dev/zero never ends, so only cancellation can
// stop it.
func TestHashSourcesCancel(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := hashSources(ctx, []string{"/dev/zero"})
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
