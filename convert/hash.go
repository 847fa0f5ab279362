package convert

import (
	"context"

	"github.com/quantpack/quantpack/internal/manifest"
)

// The source hashes of convert and export: computed in the background while
// the tensors are written (both are bound by reading the checkpoint), and
// stopped by the context within one chunk (manifest.HashFileContext).

// hashSources starts hashing files in the background and returns a function
// that waits for the result.
func hashSources(ctx context.Context, files []string) func() ([]manifest.File, error) {
	type result struct {
		hs  []manifest.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		for _, f := range files {
			if ctx.Err() != nil {
				r.err = ctx.Err()
				break
			}
			h, err := manifest.HashFileContext(ctx, f)
			if err != nil {
				r.err = err
				break
			}
			r.hs = append(r.hs, h)
		}
		ch <- r
	}()
	return func() ([]manifest.File, error) {
		r := <-ch
		return r.hs, r.err
	}
}

type hashResult struct {
	files []manifest.File
	err   error
}

// hashFilesAsync hashes a checkpoint's files in the background. (An
// artifact's manifest has its checkpoint's hashes already.)
func hashFilesAsync(ctx context.Context, origin *exportSource) <-chan hashResult {
	ch := make(chan hashResult, 1)
	files := origin.ckpt.Files()
	go func() {
		var r hashResult
		for _, f := range files {
			h, err := manifest.HashFileContext(ctx, f)
			if err != nil {
				r.err = err
				break
			}
			r.files = append(r.files, h)
		}
		ch <- r
	}()
	return ch
}
