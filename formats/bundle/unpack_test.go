package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

// good is the artifact the hostile archives below are variations of.
var good = map[string][]byte{"a.bin": []byte("weights a"), "dir/b.bin": []byte("weights b, longer")}

// hostileCase is a hand-made archive Unpack must refuse.
type hostileCase struct {
	name  string
	data  []byte // bundle bytes
	max   int64  // UnpackOptions.MaxBytes
	want  error  // sentinel
	index int    // entry index in the EntryError; -2: not checked
	entry string // entry name in the EntryError
}

func hostileCases(t testing.TB) []hostileCase {
	man := manifestEntry(manifestFor(t, good))
	a, b := file("a.bin", good["a.bin"]), file("dir/b.bin", good["dir/b.bin"])
	withType := func(name string, typ byte, link string) entry {
		e := file(name, nil)
		e.hdr.Typeflag, e.hdr.Linkname = typ, link
		return e
	}
	z := func(es ...entry) []byte { return compress(t, makeTar(t, es...)) }
	bigger := file("a.bin", append(bytes.Clone(good["a.bin"]), " and more"...))
	tampered := file("a.bin", []byte("weights A"))
	v2 := manifestEntry(manifestFor(t, good))
	v2.hdr.PAXRecords = map[string]string{VersionRecord: strconv.Itoa(FormatVersion + 1)}
	noVersion := file(manifest.Name, manifestFor(t, good))
	badList := manifestEntry([]byte(`{"files":[{"path":"../x","size":1,"sha256":"` + strings.Repeat("0", 64) + `"}]}`))
	global := entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"comment": "x"}, Format: tar.FormatPAX}}
	hugeManifest := manifestEntry(bytes.Repeat([]byte(" "), MaxManifestSize+1))
	goodTar := makeTar(t, man, a, b)
	garbage := compress(t, append(bytes.Clone(goodTar), "junk"...))
	goodZ := compress(t, goodTar)

	return []hostileCase{
		{"absolute path", z(man, file("/etc/a.bin", good["a.bin"])), 0, ErrUnsafePath, 1, "/etc/a.bin"},
		{"dot-dot", z(man, file("../a.bin", good["a.bin"])), 0, ErrUnsafePath, 1, "../a.bin"},
		{"inner dot-dot", z(man, file("dir/../../a.bin", good["a.bin"])), 0, ErrUnsafePath, 1, "dir/../../a.bin"},
		{"backslash", z(man, file(`..\a.bin`, good["a.bin"])), 0, ErrUnsafePath, 1, `..\a.bin`},
		{"symlink", z(man, withType("a.bin", tar.TypeSymlink, "/etc/passwd"), b), 0, ErrEntryType, 1, "a.bin"},
		{"hard link", z(man, a, withType("dir/b.bin", tar.TypeLink, "a.bin")), 0, ErrEntryType, 2, "dir/b.bin"},
		{"char device", z(man, withType("a.bin", tar.TypeChar, "")), 0, ErrEntryType, 1, "a.bin"},
		{"block device", z(man, withType("a.bin", tar.TypeBlock, "")), 0, ErrEntryType, 1, "a.bin"},
		{"fifo", z(man, withType("a.bin", tar.TypeFifo, "")), 0, ErrEntryType, 1, "a.bin"},
		{"directory", z(man, withType("dir/", tar.TypeDir, ""), a, b), 0, ErrEntryType, 1, "dir/"},
		{"global header", z(man, global, a, b), 0, ErrEntryType, 1, "g"},
		{"PAX sparse", compress(t, paxSparse(t, man)), 0, ErrEntryType, 1, "a.bin"},
		{"duplicate", z(man, a, a, b), 0, ErrDuplicate, 2, "a.bin"},
		{"second manifest", z(man, a, man, b), 0, ErrDuplicate, 2, manifest.Name},
		{"larger than declared", z(man, bigger, b), 0, ErrSize, 1, "a.bin"},
		{"not in manifest", z(man, a, b, file("extra.bin", []byte("x"))), 0, ErrNotInManifest, 3, "extra.bin"},
		{"missing", z(man, a), 0, ErrMissing, -1, "dir/b.bin"},
		{"hash", z(man, tampered, b), 0, ErrHash, 1, "a.bin"},
		{"over max-bytes", goodZ, 10, ErrTooLarge, 0, manifest.Name},
		{"manifest not first", z(a, man, b), 0, ErrManifest, 0, "a.bin"},
		{"no version record", z(noVersion, a, b), 0, ErrManifest, 0, manifest.Name},
		{"newer version", z(v2, a, b), 0, ErrVersion, 0, manifest.Name},
		{"manifest lists ..", z(badList), 0, ErrManifest, 0, manifest.Name},
		{"manifest too large", z(hugeManifest), 0, ErrManifest, 0, manifest.Name},
		{"manifest not JSON", z(manifestEntry([]byte("{"))), 0, ErrManifest, 0, manifest.Name},
		{"empty archive", compress(t, nil), 0, ErrManifest, -2, ""},
		{"data after the archive", garbage, 0, ErrCorrupt, -2, ""},
		{"truncated", goodZ[:len(goodZ)-9], 0, ErrCorrupt, -2, ""},
		{"no trailer", goodZ[:len(goodZ)-trailerLen], 0, ErrCorrupt, -2, ""},
		{"appended after the trailer", append(bytes.Clone(goodZ), goodZ[len(goodZ)-trailerLen:]...), 0, ErrCorrupt, -2, ""},
		{"not zstd", goodTar, 0, ErrCorrupt, 0, ""},
		{"empty file", nil, 0, ErrCorrupt, -1, ""},
	}
}

// paxSparse is an archive whose a.bin is a PAX 1.0 sparse file (9 bytes,
// all a hole): a pax header built as a regular entry and retyped, since
// the Go writer drops GNU.sparse records.
func paxSparse(t testing.TB, man entry) []byte {
	t.Helper()
	var recs []byte
	for _, kv := range []string{"GNU.sparse.major=1", "GNU.sparse.minor=0", "GNU.sparse.name=a.bin", "GNU.sparse.realsize=9"} {
		n := len(kv) + 3
		if len(fmt.Sprint(n)) > 1 {
			n++
		}
		recs = append(recs, fmt.Sprintf("%d %s\n", n, kv)...)
	}
	sparseMap := append([]byte("1\n9\n0\n"), make([]byte, 512-6)...) // one entry: offset 9, length 0
	tb := makeTar(t, man, file("PaxHeaders/a.bin", recs), file("a.bin", sparseMap), file("dir/b.bin", good["dir/b.bin"]))
	return setTypeflag(t, tb, "PaxHeaders/a.bin", tar.TypeXHeader)
}

// setTypeflag rewrites the typeflag of the header named name in a tar
// stream and fixes its checksum (the Go writer will not write some types).
func setTypeflag(t testing.TB, tarBytes []byte, name string, typ byte) []byte {
	t.Helper()
	out := bytes.Clone(tarBytes)
	for off := 0; off+512 <= len(out); off += 512 {
		h := out[off : off+512]
		if !bytes.HasPrefix(h, append([]byte(name), 0)) || !bytes.Equal(h[257:262], []byte("ustar")) {
			continue
		}
		h[156] = typ
		copy(h[148:156], "        ")
		var sum int
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return out
	}
	t.Fatalf("no header %q", name)
	return nil
}

func TestUnpackRefusesHostile(t *testing.T) {
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			bundle := writeBundle(t, c.data)
			_, err := Unpack(context.Background(), bundle, filepath.Join(parent, "out"), UnpackOptions{MaxBytes: c.max})
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			wantClass := fault.Invalid
			if c.want == ErrVersion {
				wantClass = fault.Unsupported
			}
			if got := fault.ClassOf(err); got != wantClass {
				t.Errorf("class %v, want %v", got, wantClass)
			}
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("%v is not an *EntryError", err)
			}
			if c.index != -2 && (ee.Index != c.index || ee.Name != c.entry) {
				t.Errorf("located at entry %d %q, want %d %q", ee.Index, ee.Name, c.index, c.entry)
			}
			if ee.Bundle != bundle {
				t.Errorf("error names bundle %q, want %q", ee.Bundle, bundle)
			}
			if names := dirNames(t, parent); len(names) != 0 {
				t.Errorf("left behind: %v", names)
			}
			// check refuses it too (content differences as ErrMismatch).
			if _, err := Check(context.Background(), bundle, UnpackOptions{MaxBytes: c.max}); err == nil || fault.ClassOf(err) != wantClass {
				t.Errorf("Check: err = %v, want class %v", err, wantClass)
			}
		})
	}
}

func TestUnpackOutputDir(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, good, sampleMeta)
	bundle, _ := packDir(t, src, PackOptions{})

	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644)
	_, err := Unpack(context.Background(), bundle, full, UnpackOptions{})
	if !errors.Is(err, ErrOutputNotEmpty) || fault.ClassOf(err) != fault.Usage {
		t.Errorf("non-empty output: err = %v, want ErrOutputNotEmpty (usage)", err)
	}
	if names := dirNames(t, full); len(names) != 1 {
		t.Errorf("non-empty output touched: %v", names)
	}

	empty := t.TempDir()
	if _, err := Unpack(context.Background(), bundle, empty, UnpackOptions{}); err != nil {
		t.Errorf("empty output: %v", err)
	}
	if got := readTree(t, empty); !bytes.Equal(got["dir/b.bin"], good["dir/b.bin"]) {
		t.Error("empty output: files not unpacked")
	}

	// Missing parents are created, and removed again when unpack fails.
	root := t.TempDir()
	if _, err := Unpack(context.Background(), bundle, filepath.Join(root, "x", "y", "out"), UnpackOptions{}); err != nil {
		t.Errorf("missing parents: %v", err)
	}
	bad := writeBundle(t, compress(t, makeTar(t, manifestEntry(manifestFor(t, good)))))
	root2 := t.TempDir()
	if _, err := Unpack(context.Background(), bad, filepath.Join(root2, "x", "y", "out"), UnpackOptions{}); !errors.Is(err, ErrMissing) {
		t.Errorf("err = %v, want ErrMissing", err)
	}
	if names := dirNames(t, root2); len(names) != 0 {
		t.Errorf("created parents left behind: %v", names)
	}
}

// A byte flipped in any file's data, after pack, is reported as a hash
// mismatch naming that entry; one flipped in the manifest is refused too.
func TestUnpackDetectsFlippedFileByte(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, sampleFiles(), sampleMeta)
	bundle, _ := packDir(t, src, PackOptions{})
	raw, _ := os.ReadFile(bundle)
	tarBytes := decompress(t, raw)
	for _, loc := range dataOffsets(t, tarBytes) {
		if loc.size == 0 {
			continue
		}
		t.Run(loc.name, func(t *testing.T) {
			bad := bytes.Clone(tarBytes)
			bad[loc.off+loc.size/2] ^= 0x20
			p := writeBundle(t, compress(t, bad))
			parent := t.TempDir()
			_, err := Unpack(context.Background(), p, filepath.Join(parent, "out"), UnpackOptions{})
			var ee *EntryError
			switch {
			case fault.ClassOf(err) != fault.Invalid || !errors.As(err, &ee):
				t.Fatalf("err = %v, want a located invalid-input error", err)
			case loc.name == ProvenanceName && (!errors.Is(err, ErrManifest) || ee.Name != loc.name):
				t.Errorf("err = %v, want ErrManifest naming %s", err, loc.name)
			case loc.name != manifest.Name && loc.name != ProvenanceName && (!errors.Is(err, ErrHash) || ee.Name != loc.name):
				t.Errorf("err = %v, want ErrHash naming %s", err, loc.name)
			}
			if names := dirNames(t, parent); len(names) != 0 {
				t.Errorf("left behind: %v", names)
			}
		})
	}
}

type dataLoc struct {
	name      string
	off, size int
}

// dataOffsets finds where each entry's data lies in a tar stream.
func dataOffsets(t testing.TB, tarBytes []byte) []dataLoc {
	t.Helper()
	cr := &limitCounter{r: bytes.NewReader(tarBytes), limit: 1 << 62}
	tr := tar.NewReader(cr)
	var out []dataLoc
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		out = append(out, dataLoc{h.Name, int(cr.n), int(h.Size)})
	}
	return out
}

// A byte flipped anywhere in the compressed stream is detected: every
// position of a small bundle and a spread of positions, header and trailer
// included, of a larger one, flipping the low bit, the
// high bit or all bits in turn. (Without the sha256 trailer, one-bit flips
// in the padding after zstd table descriptions went unnoticed.)
func TestDetectsFlippedCompressedByte(t *testing.T) {
	small := t.TempDir()
	writeArtifact(t, small, good, sampleMeta)
	large := t.TempDir()
	writeArtifact(t, large, map[string][]byte{"w.bin": makePayload("bf16", 200<<10, 9), "c.json": []byte("{}")}, sampleMeta)
	for name, dir := range map[string]string{"small": small, "large": large} {
		bundle, _ := packDir(t, dir, PackOptions{})
		raw, _ := os.ReadFile(bundle)
		var positions []int
		step := max(1, len(raw)/300)
		for i := 0; i < len(raw); i++ {
			if i < 64 || i >= len(raw)-64 || i%step == 0 {
				positions = append(positions, i)
			}
		}
		missed := 0
		for n, i := range positions {
			bad := bytes.Clone(raw)
			bad[i] ^= []byte{0x01, 0x80, 0xff}[n%3]
			_, err := Verify(context.Background(), bytes.NewReader(bad), "flipped", UnpackOptions{})
			if err == nil || fault.ClassOf(err) != fault.Invalid {
				missed++
				if missed < 5 {
					t.Errorf("%s: byte %d of %d: err = %v", name, i, len(raw), err)
				}
			}
		}
		if missed > 0 {
			t.Errorf("%s: %d of %d flips undetected", name, missed, len(positions))
		}
		t.Logf("%s: %d bytes, %d flips detected", name, len(raw), len(positions))
	}
}

func TestUnpackCancelled(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, sampleFiles(), sampleMeta)
	bundle, _ := packDir(t, src, PackOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	parent := t.TempDir()
	n := 0
	_, err := Unpack(ctx, bundle, filepath.Join(parent, "out"), UnpackOptions{Progress: func(done, total int64) {
		if n++; n == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if names := dirNames(t, parent); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}
