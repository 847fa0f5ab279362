package bundle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles()
	writeArtifact(t, dir, files, sampleMeta)
	res, err := Check(context.Background(), dir, UnpackOptions{})
	if err != nil || !res.OK || res.Kind != "dir" || res.Files != len(files) {
		t.Fatalf("clean dir: %+v, %v", res, err)
	}

	// Four kinds of difference at once: changed bytes, changed size,
	// removed file, added file.
	p := filepath.Join(dir, "model.safetensors")
	b := bytes.Clone(files["model.safetensors"])
	b[12345] ^= 1
	os.WriteFile(p, b, 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	os.Remove(filepath.Join(dir, "onnx", "model.onnx.data"))
	os.WriteFile(filepath.Join(dir, "verify.json"), []byte("{}"), 0o644)
	res, err = Check(context.Background(), dir, UnpackOptions{})
	if !errors.Is(err, ErrMismatch) || fault.ClassOf(err) != fault.Invalid {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	want := []string{"config.json: size", "model.safetensors: sha256", "onnx/model.onnx.data: missing", "verify.json: not in manifest"}
	assertDifferences(t, res, want)

	os.Remove(filepath.Join(dir, manifest.Name))
	if _, err := Check(context.Background(), dir, UnpackOptions{}); !errors.Is(err, ErrMissing) {
		t.Errorf("no manifest: err = %v, want ErrMissing", err)
	}
}

// assertDifferences checks that res reports exactly the given differences
// (each a prefix of one line).
func assertDifferences(t *testing.T, res *CheckResult, want []string) {
	t.Helper()
	if res == nil {
		t.Fatal("no result")
	}
	got := append([]string(nil), res.Differences...)
	sort.Strings(got)
	if res.OK || len(got) != len(want) {
		t.Fatalf("differences %q, want %d: %q", got, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("difference %q, want %q…", got[i], want[i])
		}
	}
}

// A bundle whose content differs from its manifest in several ways is
// reported in full, not just at the first difference; the error also
// carries the first difference's own sentinel and entry.
func TestCheckBundleCollects(t *testing.T) {
	man := manifestEntry(manifestFor(t, good))
	z := compress(t, makeTar(t, man,
		file("a.bin", []byte("weights A")), // same size, other bytes
		file("extra.bin", []byte("x")),     // not listed
	)) // dir/b.bin missing
	res, err := Check(context.Background(), writeBundle(t, z), UnpackOptions{})
	var ee *EntryError
	if !errors.Is(err, ErrMismatch) || !errors.Is(err, ErrHash) || !errors.As(err, &ee) || ee.Name != "a.bin" {
		t.Fatalf("err = %v, want ErrMismatch and ErrHash at a.bin", err)
	}
	assertDifferences(t, res, []string{"a.bin: sha256", "dir/b.bin: missing", "extra.bin: not in manifest"})

	// Size differences are reported too (unpack refuses them outright).
	bigger := file("a.bin", []byte("weights a!"))
	res, err = Verify(context.Background(), bytes.NewReader(compress(t, makeTar(t, man, bigger, file("dir/b.bin", good["dir/b.bin"])))), "s", UnpackOptions{})
	if !errors.Is(err, ErrSize) {
		t.Errorf("err = %v, want ErrSize", err)
	}
	assertDifferences(t, res, []string{"a.bin: size 10, manifest says 9"})
}

func TestCheckBundleClean(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles()
	writeArtifact(t, dir, files, sampleMeta)
	bundle, _ := packDir(t, dir, PackOptions{})
	st, _ := os.Stat(bundle)
	var done, total int64
	res, err := Check(context.Background(), bundle, UnpackOptions{Progress: func(d, tot int64) { done, total = d, tot }})
	if err != nil || !res.OK || res.Kind != "bundle" || res.Files != len(files) || res.FormatVersion != FormatVersion {
		t.Fatalf("%+v, %v", res, err)
	}
	var sum int64
	for _, b := range files {
		sum += int64(len(b))
	}
	if res.Bytes != sum {
		t.Errorf("hashed %d bytes, want %d", res.Bytes, sum)
	}
	if done != st.Size() || total != st.Size() {
		t.Errorf("progress %d/%d, want %d/%d", done, total, st.Size(), st.Size())
	}
}
