package convert

import (
	"context"

	"github.com/quantpack/quantpack/internal/manifest"
)

// The source hashes of convert and export: computed in the background while
// the tensors are written (both are bound by reading the checkpoint), and
// stopped by the context within one chunk (manifest.HashFiles).

// hashSources starts hashing files in the background and returns a function
// that waits for the result. Callers cancel ctx when the work it overlaps
// fails, so a multi-gigabyte checkpoint is not read to its end for nothing.
func hashSources(ctx context.Context, files []string) func() ([]manifest.File, error) {
	type result struct {
		hs  []manifest.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		hs, err := manifest.HashFiles(ctx, files)
		ch <- result{hs, err}
	}()
	return func() ([]manifest.File, error) {
		r := <-ch
		return r.hs, r.err
	}
}
