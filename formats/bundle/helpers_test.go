package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"

	"github.com/klauspost/compress/zstd"

	"github.com/quantpack/quantpack/internal/manifest"
)

// writeArtifact writes files (slash paths) under dir and, when meta is not
// nil, a quantpack.json holding meta plus an exact "files" list, the way
// convert writes one.
func writeArtifact(t testing.TB, dir string, files map[string][]byte, meta map[string]any) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if meta == nil {
		return
	}
	doc := map[string]any{}
	for k, v := range meta {
		doc[k] = v
	}
	doc["files"] = fileList(files)
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifest.Name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileList is the manifest "files" list of an in-memory artifact, hashed
// here independently of the package under test.
func fileList(files map[string][]byte) []manifest.File {
	out := []manifest.File{}
	for p, b := range files {
		s := sha256.Sum256(b)
		out = append(out, manifest.File{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// sampleFiles is a small artifact: weights larger than the copy buffer, a
// nested file, an empty file.
func sampleFiles() map[string][]byte {
	return map[string][]byte{
		"model.safetensors":        makePayload("bf16", 3<<20+77, 1),
		"config.json":              []byte(`{"architectures":["ViTForImageClassification"]}`),
		"onnx/model.onnx.data":     makePayload("int8", 70_000, 2),
		"preprocessor_config.json": {},
	}
}

var sampleMeta = map[string]any{"tool_version": "test", "precision": "bf16", "scheme": map[string]any{"rest_dtype": "fp16"}}

// packDir packs dir into a new file under t.TempDir and returns its path.
func packDir(t testing.TB, dir string, opts PackOptions) (string, *PackResult) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	res, err := Pack(context.Background(), dir, out, opts)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	return out, res
}

// readTree returns every regular file under dir by slash path.
func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dirNames lists dir's entries (to prove nothing was left behind).
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// entry is one tar entry of a hand-made archive.
type entry struct {
	hdr  tar.Header
	body []byte
}

// file is a regular-file entry with the deterministic header.
func file(name string, body []byte) entry {
	return entry{hdr: *entryHeader(name, int64(len(body))), body: body}
}

// manifestEntry is the first entry of a bundle: the manifest with the
// version record.
func manifestEntry(b []byte) entry {
	e := file(manifest.Name, b)
	e.hdr.Format = tar.FormatPAX
	e.hdr.PAXRecords = map[string]string{VersionRecord: "1"}
	return e
}

// manifestFor is the manifest JSON listing files.
func manifestFor(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"files": fileList(files)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeTar builds a tar stream from entries.
func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("header %q: %v", h.Name, err)
		}
		if len(e.body) > 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatalf("body %q: %v", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress wraps a tar stream the way Pack does: one zstd frame and the
// sha256 trailer.
func compress(t testing.TB, tarBytes []byte) []byte {
	t.Helper()
	opts, err := encoderOptions(LevelFastestLit, 2)
	if err != nil {
		t.Fatal(err)
	}
	return compressWith(t, tarBytes, opts)
}

func compressWith(t testing.TB, tarBytes []byte, opts []zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(tarBytes); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return append(buf.Bytes(), trailer(sum[:])...)
}

// decompress returns the tar stream of a bundle.
func decompress(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// writeBundle writes bundle bytes to a new file and returns its path.
func writeBundle(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.tar.zst")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fixturesDir returns ../shared/fixtures, skipping (failing in CI) when absent.
func fixturesDir(t testing.TB) string { return testenv.Fixtures(t, "") }
