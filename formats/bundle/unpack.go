package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
)

// UnpackOptions control Unpack and Check.
type UnpackOptions struct {
	// MaxBytes caps the unpacked size (the file sizes the manifest
	// declares); 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxRatio caps declared unpacked bytes per byte of bundle file (above
	// 256 MiB declared); 0 means DefaultMaxRatio. Streams of unknown length
	// are not checked.
	MaxRatio float64
	// Progress, when set, is called as compressed bytes are consumed, with
	// the bundle's size as total (0 when unknown, as for a stream).
	Progress func(done, total int64)
	// Trust, when set, requires a valid signature by one of its allowed
	// signers (see TrustPolicy); without one nothing is extracted and the
	// error wraps ErrSignature.
	Trust *TrustPolicy

	size int64 // of the bundle file, when known: for MaxRatio
	// overhead replaces maxStreamOverhead when > 0: the fuzz targets bound
	// the work one input can ask for (an 80 MiB stream of headers is valid
	// input, but decoding and hashing it under coverage instrumentation
	// takes seconds and trips the fuzzer's deadline).
	overhead int64
}

// UnpackResult describes an unpacked bundle; it is also the JSON that
// `quantpack unpack --json` prints.
type UnpackResult struct {
	Bundle            string `json:"bundle"`
	Dir               string `json:"dir"`
	Files             int    `json:"files"` // files written, the manifest included
	Bytes             int64  `json:"bytes"` // bytes written
	FormatVersion     int    `json:"format_version"`
	ManifestRewritten bool   `json:"manifest_rewritten"` // pack regenerated quantpack.json
	Provenance        bool   `json:"provenance"`         // the bundle carries quantpack.provenance.json
	// Signatures lists the bundle's signatures and what was found of each
	// (see SignatureInfo); empty when it has none.
	Signatures []SignatureInfo `json:"signatures"`
}

// Unpack extracts the bundle at path into outDir, which must not exist or be
// an empty directory. Everything is written into a temporary directory
// beside outDir and renamed into place only when every entry has been
// checked: listed in the manifest with the declared size, its sha256 equal
// to the manifest's, every listed file present, the stream intact to its
// end. On any failure the temporary directory is removed and outDir is left
// as it was. Entries are refused when absolute, with "..", not regular files
// (links, devices, directories), duplicated, or over a limit. outDir is
// cleaned first: "deploy/" and "deploy" are the same directory (the
// temporary directory is made beside filepath.Dir of the clean path, never
// inside the target).
func Unpack(ctx context.Context, path, outDir string, opts UnpackOptions) (*UnpackResult, error) {
	outDir = filepath.Clean(outDir)
	if err := checkEmptyOrAbsent(outDir); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	max := opts.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	// zstd never makes data much larger, so a bundle file longer than the
	// limit plus the tar overhead cannot hold an acceptable archive.
	if fi.Size() > saturatingAdd(max, maxStreamOverhead) {
		return nil, &EntryError{Bundle: path, Index: -1, Err: ErrTooLarge, Detail: fmt.Sprintf("bundle is %d bytes, limit %d", fi.Size(), max)}
	}
	parent := filepath.Dir(outDir)
	undoParent, err := makeParent(parent)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			undoParent()
		}
	}()
	atomicfile.RemoveStale(parent)
	tmp, err := os.MkdirTemp(parent, atomicfile.TempPattern(filepath.Base(outDir), "unpack"))
	if err != nil {
		return nil, err
	}
	defer atomicfile.Track(tmp)() // a forced exit on a signal removes it
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()

	prog := &progress{fn: opts.Progress, total: fi.Size()}
	opts.MaxBytes, opts.size = max, fi.Size()
	rd, err := openReader(ctx, f, path, opts, prog)
	if err != nil {
		return nil, err
	}
	defer rd.close()
	// Refuse before writing anything what the disk cannot hold.
	if free, ok := freeBytes(parent); ok && free < rd.man.total {
		return nil, &FileError{Path: parent, Err: ErrNoSpace,
			Detail: fmt.Sprintf("the bundle declares %d bytes, %d are free", rd.man.total, free)}
	}
	res := &UnpackResult{Bundle: path, Dir: outDir, FormatVersion: rd.version, ManifestRewritten: rd.man.rewritten}
	if err := writeFileSync(filepath.Join(tmp, manifest.Name), rd.manRaw); err != nil {
		return nil, err
	}
	res.Files, res.Bytes = 1, int64(len(rd.manRaw))
	if rd.prov != nil {
		if err := writeFileSync(filepath.Join(tmp, ProvenanceName), rd.prov); err != nil {
			return nil, err
		}
		res.Files, res.Bytes, res.Provenance = 2, res.Bytes+int64(len(rd.prov)), true
	}
	dirs := map[string]bool{tmp: true}
	for {
		hdr, err := rd.nextHeader()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		want, ok := rd.man.byPath[hdr.Name]
		if !ok {
			return nil, rd.fail(ErrNotInManifest, "")
		}
		if hdr.Size != want.Size {
			return nil, rd.fail(ErrSize, "entry has %d bytes, manifest declares %d", hdr.Size, want.Size)
		}
		dst := filepath.Join(tmp, filepath.FromSlash(hdr.Name))
		if d := filepath.Dir(dst); !dirs[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
			for ; !dirs[d]; d = filepath.Dir(d) {
				dirs[d] = true
			}
		}
		if err := rd.extract(dst, want); err != nil {
			return nil, err
		}
		res.Files++
		res.Bytes += hdr.Size
	}
	if err := rd.checkAllSeen(); err != nil {
		return nil, err
	}
	// The signatures come last in the file; they are judged before the
	// extracted tree is moved into place, so a refused bundle leaves nothing.
	if res.Signatures, err = rd.judge(opts.Trust); err != nil {
		return nil, err
	}
	// The commit point is the last cancellation check.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := commitDir(tmp, outDir, dirs); err != nil {
		return nil, err
	}
	committed = true
	return res, nil
}

// extract writes the current entry to dst (a new file), hashing it, and
// compares the hash with the manifest.
func (rd *reader) extract(dst string, want manifest.File) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	if err := rd.copyEntry(io.MultiWriter(out, h), want.Size); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return rd.fail(ErrHash, "got %s, manifest says %s", got, want.SHA256)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

// checkAllSeen reports the first manifest file that had no entry.
func (rd *reader) checkAllSeen() error {
	for _, f := range rd.man.files {
		if !rd.seen[f.Path] {
			return &EntryError{Bundle: rd.bundle, Index: -1, Name: f.Path, Offset: rd.raw.n, Err: ErrMissing, Detail: fmt.Sprintf("%q has no entry", f.Path)}
		}
	}
	return nil
}

// checkEmptyOrAbsent accepts a path that does not exist or is an empty
// directory (not a symlink to one).
func checkEmptyOrAbsent(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &FileError{Path: dir, Err: ErrOutputNotEmpty, Detail: "exists and is not a directory"}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if names, _ := d.Readdirnames(1); len(names) > 0 {
		return &FileError{Path: dir, Err: ErrOutputNotEmpty, Detail: "choose a new or empty directory"}
	}
	return nil
}

// commitDir makes the extracted tree durable and moves it to outDir: every
// directory is fsynced (deepest first), the temporary one is renamed over an
// empty outDir (removed first) or to a new name, and the parent is fsynced.
func commitDir(tmp, outDir string, dirs map[string]bool) error {
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		list = append(list, d)
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	for _, d := range list {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Remove(outDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Not empty any more: someone wrote into it meanwhile.
		return &FileError{Path: outDir, Err: ErrOutputNotEmpty, Detail: err.Error()}
	}
	if err := os.Rename(tmp, outDir); err != nil {
		return err
	}
	return syncPath(filepath.Dir(outDir))
}

// makeParent creates dir and its missing ancestors (pack and unpack make
// the parent of their output) and returns undo, which removes the ones it
// created again, from dir up, stopping at one that is no longer empty: a
// command that fails calls it, so a mistyped -o leaves no empty directories.
func makeParent(dir string) (undo func(), err error) {
	created := firstMissing(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return func() {
		if created != "" {
			removeEmptyUpTo(dir, created)
		}
	}, nil
}

// firstMissing returns the topmost ancestor of dir (or dir itself) that
// does not exist, or "" when dir exists.
func firstMissing(dir string) string {
	missing := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			return missing
		}
		missing = d
		if filepath.Dir(d) == d {
			return missing
		}
	}
}

// removeEmptyUpTo removes the directories from dir up to top, stopping at
// the first one not empty.
func removeEmptyUpTo(dir, top string) {
	for d := dir; ; d = filepath.Dir(d) {
		if os.Remove(d) != nil || d == top || filepath.Dir(d) == d {
			return
		}
	}
}

func syncPath(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
