package bundle

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/manifest"
)

// The reference checkpoints (real Hugging Face layouts without a
// quantpack.json) round-trip byte for byte; pack gives them a manifest.
func TestFixtureRoundTrip(t *testing.T) {
	ref := filepath.Join(fixturesDir(t), "reference")
	dirs, err := os.ReadDir(ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("%s is empty", ref)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		t.Run(d.Name(), func(t *testing.T) {
			src := filepath.Join(ref, d.Name())
			bundle, res := packDir(t, src, PackOptions{})
			if res.Manifest != "rewritten" {
				t.Errorf("manifest %q, want rewritten (fixtures have none)", res.Manifest)
			}
			out := filepath.Join(t.TempDir(), "out")
			if _, err := Unpack(context.Background(), bundle, out, UnpackOptions{}); err != nil {
				t.Fatal(err)
			}
			want, got := readTree(t, src), readTree(t, out)
			for p, b := range want {
				if !bytes.Equal(got[p], b) {
					t.Errorf("%s differs after the round trip", p)
				}
			}
			if len(got) != len(want)+2 || got[manifest.Name] == nil || got[ProvenanceName] == nil {
				t.Errorf("unpacked %d files, want %d and %s", len(got), len(want), manifest.Name)
			}
		})
	}
}
