package convert

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/testenv"
)

// TestKnownSourceHashes: sums a caller passes are used only for exactly
// the checkpoint's files at their sizes; convert and export then record
// them instead of reading the checkpoint again. (A deliberately fake sum
// proves no re-hash happened; a size mismatch proves the fallback.)
func TestKnownSourceHashes(t *testing.T) {
	src := testenv.Fixtures(t, filepath.Join("reference", "vit"))
	file := filepath.Join(src, "model.safetensors")
	real, err := manifest.HashFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fake := real
	fake.SHA256 = strings.Repeat("ab", 32)
	for _, c := range []struct {
		name  string
		known []manifest.File
		ok    bool
	}{
		{"match", []manifest.File{fake}, true},
		{"none", nil, false},
		{"size", []manifest.File{{Path: fake.Path, Size: fake.Size + 1, SHA256: fake.SHA256}}, false},
		{"name", []manifest.File{{Path: "other.safetensors", Size: fake.Size, SHA256: fake.SHA256}}, false},
		{"count", []manifest.File{fake, fake}, false},
		{"short sum", []manifest.File{{Path: fake.Path, Size: fake.Size, SHA256: "ab"}}, false},
	} {
		if _, ok := knownHashes([]string{file}, c.known); ok != c.ok {
			t.Errorf("%s: ok = %v, want %v", c.name, ok, c.ok)
		}
	}

	out := filepath.Join(t.TempDir(), "int8")
	m, err := Convert(context.Background(), src, out, Options{Precision: Int8, SourceHashes: []manifest.File{fake}, NoStats: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Sources[0].SHA256 != fake.SHA256 {
		t.Fatalf("convert re-hashed the source: %s", m.Sources[0].SHA256)
	}
	out2 := filepath.Join(t.TempDir(), "int8")
	m, err = Convert(context.Background(), src, out2, Options{Precision: Int8, NoStats: true,
		SourceHashes: []manifest.File{{Path: fake.Path, Size: fake.Size - 1, SHA256: fake.SHA256}}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Sources[0].SHA256 != real.SHA256 {
		t.Fatalf("mismatched known sums were used: %s", m.Sources[0].SHA256)
	}
	em, err := Export(context.Background(), src, filepath.Join(t.TempDir(), "fp32"), ExportOptions{Precision: ExportFP32,
		SourceHashes: []manifest.File{fake}})
	if err != nil {
		t.Fatal(err)
	}
	if em.Source.Files[0].SHA256 != fake.SHA256 {
		t.Fatalf("export re-hashed the source: %s", em.Source.Files[0].SHA256)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
