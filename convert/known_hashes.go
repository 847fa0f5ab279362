package convert

import (
	"context"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/internal/manifest"
)

// knownHashes returns the sha256 sums a caller already took of files
// (Options.SourceHashes, ExportOptions.SourceHashes), so that a study, which
// hashes each checkpoint once to key its cache, does not make every convert
// and export read the checkpoint again only to hash it (three full reads of
// 2.5 GB for ViT-Huge). They are used only when they name exactly these
// files, in order, by base name, at their current sizes; otherwise ok is
// false and the files are hashed as usual. The caller vouches for the
// contents: it hashed them itself, in this process.
func knownHashes(files []string, known []manifest.File) ([]manifest.File, bool) {
	if len(known) == 0 || len(known) != len(files) {
		return nil, false
	}
	out := make([]manifest.File, len(files))
	for i, f := range files {
		k := known[i]
		st, err := os.Stat(f)
		if err != nil || k.Path != filepath.Base(f) || k.Size != st.Size() || len(k.SHA256) != 64 {
			return nil, false
		}
		out[i] = k
	}
	return out, true
}

// sourceHashes is hashSources unless the sums are known.
func sourceHashes(ctx context.Context, files []string, known []manifest.File) func() ([]manifest.File, error) {
	if hs, ok := knownHashes(files, known); ok {
		return func() ([]manifest.File, error) { return hs, nil }
	}
	return hashSources(ctx, files)
}
