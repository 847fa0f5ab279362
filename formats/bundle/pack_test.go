package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

func TestRoundTrip(t *testing.T) {
	for _, withManifest := range []bool{true, false} {
		name := map[bool]string{true: "manifest", false: "no-manifest"}[withManifest]
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			files := sampleFiles()
			meta := sampleMeta
			if !withManifest {
				meta = nil
			}
			writeArtifact(t, src, files, meta)
			bundle, pres := packDir(t, src, PackOptions{})
			out := filepath.Join(t.TempDir(), "out")
			ures, err := Unpack(context.Background(), bundle, out, UnpackOptions{})
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			got := readTree(t, out)
			for p, b := range files {
				if !bytes.Equal(got[p], b) {
					t.Errorf("%s: %d bytes back, want %d identical bytes", p, len(got[p]), len(b))
				}
			}
			if len(got) != len(files)+2 || got[ProvenanceName] == nil {
				t.Errorf("unpacked %d files, want %d, the manifest and the provenance", len(got), len(files))
			}
			if withManifest {
				orig, _ := os.ReadFile(filepath.Join(src, manifest.Name))
				if !bytes.Equal(got[manifest.Name], orig) {
					t.Error("exact manifest was not stored byte-for-byte")
				}
			}
			want := map[bool]string{true: "stored", false: "rewritten"}[withManifest]
			if pres.Manifest != want || ures.ManifestRewritten != !withManifest {
				t.Errorf("manifest %q / rewritten %v, want %q", pres.Manifest, ures.ManifestRewritten, want)
			}
			if ures.Files != len(files)+2 || pres.Files != ures.Files {
				t.Errorf("files: pack %d, unpack %d, want %d", pres.Files, ures.Files, len(files)+2)
			}
			// The unpacked directory checks clean, and so does the bundle.
			for _, p := range []string{out, bundle} {
				if res, err := Check(context.Background(), p, UnpackOptions{}); err != nil || !res.OK {
					t.Errorf("Check(%s) = %+v, %v", p, res, err)
				}
			}
			// And re-packs to the same bytes: the unpacked manifest is exact.
			again, _ := packDir(t, out, PackOptions{})
			if sha(t, again) != sha(t, bundle) {
				t.Error("pack → unpack → pack changed the bundle")
			}
		})
	}
}

func sha(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The same directory content gives the same bytes: twice in a row, with a
// different number of encoder goroutines, and from a copy with other
// modification times and modes at another path.
func TestPackDeterministic(t *testing.T) {
	src := t.TempDir()
	files := sampleFiles()
	files["big.bin"] = makePayload("fp16", 9<<20, 5) // spans several encoder jobs
	writeArtifact(t, src, files, sampleMeta)
	first, res := packDir(t, src, PackOptions{workers: 2})
	if res.SHA256 != sha(t, first) {
		t.Errorf("PackResult.SHA256 %s is not the file's %s", res.SHA256, sha(t, first))
	}
	if st, _ := os.Stat(first); st.Size() != res.Bytes {
		t.Errorf("PackResult.Bytes %d, file has %d", res.Bytes, st.Size())
	}
	second, _ := packDir(t, src, PackOptions{workers: 2})
	five, _ := packDir(t, src, PackOptions{workers: 5})
	other := filepath.Join(t.TempDir(), "elsewhere")
	writeArtifact(t, other, files, sampleMeta)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for p := range files {
		full := filepath.Join(other, filepath.FromSlash(p))
		os.Chtimes(full, old, old)
		os.Chmod(full, 0o600)
	}
	copyOf, _ := packDir(t, other, PackOptions{workers: 3})
	want := sha(t, first)
	for name, p := range map[string]string{"second": second, "workers=5": five, "copy": copyOf} {
		if got := sha(t, p); got != want {
			t.Errorf("%s: sha256 %s, first %s", name, got, want)
		}
	}
}

// The bundle is an ordinary tar.zst: manifest first with the version
// record, sorted names, fixed mode, owner and time.
func TestPackLayout(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, sampleFiles(), sampleMeta)
	bundle, _ := packDir(t, src, PackOptions{})
	raw, _ := os.ReadFile(bundle)
	tr := tar.NewReader(bytes.NewReader(decompress(t, raw)))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 && h.PAXRecords[VersionRecord] != strconv.Itoa(FormatVersion) {
			t.Errorf("first entry has no %s record: %v", VersionRecord, h.PAXRecords)
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != 0 {
			t.Errorf("%s: header %+v is not the fixed one", h.Name, h)
		}
		names = append(names, h.Name)
	}
	want := []string{manifest.Name, ProvenanceName, "config.json", "model.safetensors", "onnx/model.onnx.data", "preprocessor_config.json"}
	if !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
}

// A file added after convert (verify.json) makes pack regenerate the
// manifest: original members kept, "files" recomputed, marked.
func TestPackRewritesManifest(t *testing.T) {
	src := t.TempDir()
	files := sampleFiles()
	writeArtifact(t, src, files, sampleMeta)
	verify := []byte(`{"agreement":{"top1":0.99}}`)
	os.WriteFile(filepath.Join(src, "verify.json"), verify, 0o644)
	files["verify.json"] = verify

	bundle, res := packDir(t, src, PackOptions{})
	if res.Manifest != "rewritten" {
		t.Errorf("manifest %q, want rewritten", res.Manifest)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Unpack(context.Background(), bundle, out, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	list, doc, err := manifest.ReadFiles(out)
	if err != nil {
		t.Fatal(err)
	}
	if wantList := fileList(files); !slices.Equal(list, wantList) {
		t.Errorf("files %+v, want %+v", list, wantList)
	}
	var by, prec string
	json.Unmarshal(doc[rewrittenKey], &by)
	json.Unmarshal(doc["precision"], &prec)
	if by != "pack" || prec != "bf16" || doc["scheme"] == nil || doc["tool_version"] == nil {
		t.Errorf("regenerated manifest lost or lacks members: %v", doc)
	}
}

// Issue 17 case 6: a file that differs from the manifest (a flipped byte,
// another size, missing) is refused with the class check reports (exit 3),
// and no bundle is written: pack used to rewrite the manifest with the
// corrupt data's hashes, and the bundle then passed check and unpack.
func TestPackRefusesManifestMismatch(t *testing.T) {
	cases := []struct {
		name string
		edit func(dir string, b []byte)
		want error
	}{
		{"flipped byte", func(dir string, b []byte) {
			b[len(b)/2] ^= 0xff
			os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644)
		}, ErrHash},
		{"truncated", func(dir string, b []byte) {
			os.WriteFile(filepath.Join(dir, "model.safetensors"), b[:len(b)-1], 0o644)
		}, ErrSize},
		{"missing", func(dir string, _ []byte) { os.Remove(filepath.Join(dir, "model.safetensors")) }, ErrMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			files := sampleFiles()
			writeArtifact(t, src, files, sampleMeta)
			c.edit(src, bytes.Clone(files["model.safetensors"]))
			parent := t.TempDir()
			_, err := Pack(context.Background(), src, filepath.Join(parent, "b.tar.zst"), PackOptions{})
			var fe *FileError
			if !errors.Is(err, c.want) || fault.ClassOf(err) != fault.Invalid || !errors.As(err, &fe) || !strings.Contains(fe.Path, "model.safetensors") {
				t.Errorf("Pack: err = %v, want %v naming model.safetensors (invalid)", err, c.want)
			}
			if names := dirNames(t, parent); len(names) != 0 {
				t.Errorf("left beside the bundle: %v", names)
			}
		})
	}
}

// With Rehash, a file edited after convert is packed as it is, under a
// regenerated manifest that says pack rewrote it.
func TestPackRehash(t *testing.T) {
	src := t.TempDir()
	files := sampleFiles()
	writeArtifact(t, src, files, sampleMeta)
	edited := bytes.Clone(files["model.safetensors"])
	edited[len(edited)/2] ^= 0xff
	os.WriteFile(filepath.Join(src, "model.safetensors"), edited, 0o644)
	files["model.safetensors"] = edited

	bundle, res := packDir(t, src, PackOptions{Rehash: true})
	if res.Manifest != "rewritten" {
		t.Errorf("manifest %q, want rewritten", res.Manifest)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Unpack(context.Background(), bundle, out, UnpackOptions{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if !bytes.Equal(readTree(t, out)["model.safetensors"], edited) {
		t.Error("edited file not packed as it is on disk")
	}
	if names := dirNames(t, filepath.Dir(bundle)); len(names) != 1 {
		t.Errorf("leftovers beside the bundle: %v", names)
	}
}

func TestPackRefuses(t *testing.T) {
	t.Run("symlink", func(t *testing.T) {
		src := t.TempDir()
		writeArtifact(t, src, sampleFiles(), sampleMeta)
		if err := os.Symlink("config.json", filepath.Join(src, "link.json")); err != nil {
			t.Skip(err)
		}
		_, err := Pack(context.Background(), src, filepath.Join(t.TempDir(), "b.tar.zst"), PackOptions{})
		var fe *FileError
		if !errors.Is(err, ErrNotRegular) || !errors.As(err, &fe) || filepath.Base(fe.Path) != "link.json" || fault.ClassOf(err) != fault.Invalid {
			t.Errorf("err = %v, want ErrNotRegular naming link.json", err)
		}
	})
	t.Run("output inside", func(t *testing.T) {
		src := t.TempDir()
		writeArtifact(t, src, sampleFiles(), sampleMeta)
		_, err := Pack(context.Background(), src, filepath.Join(src, "sub", "b.tar.zst"), PackOptions{})
		if !errors.Is(err, ErrOutputInside) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("err = %v, want ErrOutputInside", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		src := t.TempDir()
		writeArtifact(t, src, sampleFiles(), sampleMeta)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		outDir := t.TempDir()
		_, err := Pack(ctx, src, filepath.Join(outDir, "b.tar.zst"), PackOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if names := dirNames(t, outDir); len(names) != 0 {
			t.Errorf("left behind: %v", names)
		}
	})
}

// DIR given through a symlink packs like DIR itself.
func TestPackDirThroughSymlink(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, sampleFiles(), sampleMeta)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(src, link); err != nil {
		t.Skip(err)
	}
	a, _ := packDir(t, src, PackOptions{})
	b, _ := packDir(t, link, PackOptions{})
	if sha(t, a) != sha(t, b) {
		t.Error("packing through a symlink gave other bytes")
	}
}

func TestLevelAuto(t *testing.T) {
	for prec, want := range map[string]Level{"nf4": LevelFastest, "int4": LevelFastest, "fp16": LevelFastestLit, "bf16": LevelFastestLit, "int8": LevelFastestLit, "": LevelFastestLit} {
		src := t.TempDir()
		meta := map[string]any{"precision": prec}
		if prec == "" {
			meta = nil
		}
		writeArtifact(t, src, map[string][]byte{"w.bin": makePayload("nf4", 4096, 1)}, meta)
		if _, res := packDir(t, src, PackOptions{}); res.Level != want {
			t.Errorf("precision %q: level %s, want %s", prec, res.Level, want)
		}
	}
	src := t.TempDir()
	writeArtifact(t, src, map[string][]byte{"w.bin": {1, 2, 3}}, sampleMeta)
	if _, res := packDir(t, src, PackOptions{Level: LevelBest}); res.Level != LevelBest {
		t.Errorf("explicit level: got %s", res.Level)
	}
	if _, err := ParseLevel("fastest+LIT"); err != nil {
		t.Error(err)
	}
	if _, err := ParseLevel("ultra"); err == nil {
		t.Error("ParseLevel accepted an unknown level")
	}
}

// Pack's progress reaches the total, and the total counts each byte once
// when the manifest is exact.
func TestPackProgress(t *testing.T) {
	src := t.TempDir()
	files := sampleFiles()
	writeArtifact(t, src, files, sampleMeta)
	var done, total int64
	packDir(t, src, PackOptions{Progress: func(d, tot int64) { done, total = d, tot }})
	var sum int64
	for _, b := range files {
		sum += int64(len(b))
	}
	if done != total || total != sum {
		t.Errorf("progress %d/%d, want %d/%d", done, total, sum, sum)
	}
}
