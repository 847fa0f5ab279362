package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/ssh"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
)

// copyBufSize is the chunk every file is streamed in (pack, unpack, check).
const copyBufSize = 1 << 20

// epoch is the modification time of every entry: bundles carry no times.
var epoch = time.Unix(0, 0)

// PackOptions control Pack.
type PackOptions struct {
	// Level is the encoder setting; "" or LevelAuto picks LevelFor the
	// manifest's precision.
	Level Level
	// Progress, when set, is called after each chunk with the bytes read
	// so far and the bytes this pass will read in all.
	Progress func(done, total int64)
	// Signer, when set, signs the provenance (SSHSIG, namespace
	// SignNamespace) and the signature is stored in the bundle.
	Signer ssh.Signer
	// Rehash packs the files as they are when they differ from the files
	// quantpack.json lists (size, sha256, missing): every file is hashed
	// first and the manifest regenerated. Without it such a difference is
	// an error (ErrSize, ErrHash, ErrMissing): pack never launders a
	// corrupt artifact into a bundle that passes check.
	Rehash bool
	// Overwrite lets the bundle replace an existing regular file at the
	// output path; without it an existing output is refused
	// (ErrOutputFileExists) and left untouched.
	Overwrite bool

	workers int // zstd goroutines (0: GOMAXPROCS); output does not depend on it
}

// PackResult describes a written bundle. It is also the JSON that
// `quantpack pack --json` prints.
type PackResult struct {
	Bundle        string  `json:"bundle"`
	SHA256        string  `json:"sha256"`    // of the bundle file
	Bytes         int64   `json:"bytes"`     // bundle size
	RawBytes      int64   `json:"raw_bytes"` // files plus manifest, uncompressed
	Ratio         float64 `json:"ratio"`     // bytes / raw_bytes
	Files         int     `json:"files"`     // entries, the manifest included
	Level         Level   `json:"level"`
	Manifest      string  `json:"manifest"` // "stored" (byte-for-byte) or "rewritten"
	FormatVersion int     `json:"format_version"`
	// Signatures lists the signature made with PackOptions.Signer.
	Signatures []SignatureInfo `json:"signatures"`
}

// packFile is one file to pack.
type packFile struct {
	manifest.File        // Path (slash-separated, relative), Size, SHA256 (expected)
	abs           string // path on disk
	vouched       bool   // SHA256 comes from quantpack.json, not from a first pass
}

// errStale reports that a file's hash differs from the expected one.
var errStale = errors.New("bundle: sha256 differs from the expected one")

// Pack writes dir as a bundle to out (atomically: a temporary file beside
// out, renamed when complete). quantpack.json is the first entry: stored
// byte-for-byte when it lists exactly the files present with their sizes and
// hashes, otherwise regenerated with "files" recomputed and
// "files_rewritten_by": "pack" (files added after convert, such as
// verify.json; a directory without a manifest gets one).
//
// out is cleaned first; an existing out is refused unless opts.Overwrite
// (ErrOutputFileExists), and missing parent directories are made.
//
// A file the manifest lists must match it: missing (ErrMissing), of another
// size (ErrSize) or another sha256 (ErrHash) is an error, so that a
// corrupted artifact is never packed under fresh hashes, unless
// opts.Rehash asks for exactly that.
//
// Each file is read once: files the manifest vouches for are hashed while
// they are streamed into the archive, after the manifest has been written,
// and checked against it; files it does not list are hashed in a first pass.
// Memory is bounded by the copy buffer and the encoder's jobs, never by the
// artifact.
func Pack(ctx context.Context, dir, out string, opts PackOptions) (*PackResult, error) {
	out = filepath.Clean(out)
	if err := checkOutsideDir(dir, out); err != nil {
		return nil, err
	}
	if err := checkOutputFile(out, opts.Overwrite); err != nil {
		return nil, err
	}
	undoParent, err := makeParent(filepath.Dir(out))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			undoParent()
		}
	}()
	files, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	orig, listed, doc, err := readDirManifest(dir)
	if err != nil {
		return nil, err
	}
	if !opts.Rehash {
		if err := checkListed(dir, files, listed); err != nil {
			return nil, err
		}
	}
	res, err := packOnce(ctx, dir, out, files, orig, listed, doc, !opts.Rehash, opts)
	ok = err == nil
	return res, err
}

// rehashHint tells the user what to do about a file that differs from the
// manifest.
const rehashHint = "the artifact changed after its manifest was written; `quantpack check` it, or pack --rehash to pack the files as they are"

// checkListed compares the files on disk with those the manifest lists, by
// path and size (hashes are checked while packing).
func checkListed(dir string, files []packFile, listed []manifest.File) error {
	onDisk := make(map[string]int64, len(files))
	for _, f := range files {
		onDisk[f.Path] = f.Size
	}
	for _, g := range listed {
		size, ok := onDisk[g.Path]
		p := filepath.Join(dir, filepath.FromSlash(g.Path))
		if !ok {
			return &FileError{Path: p, Err: ErrMissing, Detail: "listed in " + manifest.Name + "; " + rehashHint}
		}
		if size != g.Size {
			return &FileError{Path: p, Err: ErrSize, Detail: fmt.Sprintf("%d bytes, %s lists %d; %s", size, manifest.Name, g.Size, rehashHint)}
		}
	}
	return nil
}

func packOnce(ctx context.Context, dir, out string, files []packFile, orig []byte, listed []manifest.File,
	doc map[string]json.RawMessage, trust bool, opts PackOptions) (*PackResult, error) {
	byPath := make(map[string]manifest.File, len(listed))
	for _, f := range listed {
		byPath[f.Path] = f
	}
	var hashBytes, fileBytes int64
	for _, f := range files {
		fileBytes += f.Size
		if g, ok := byPath[f.Path]; !trust || !ok || g.Size != f.Size {
			hashBytes += f.Size
		}
	}
	prog := progress{fn: opts.Progress, total: hashBytes + fileBytes}
	buf := make([]byte, copyBufSize)

	// Expected hashes: the manifest's where it vouches (checked while
	// streaming), computed now otherwise.
	_, hasFiles := doc["files"]
	exact := orig != nil && hasFiles && len(listed) == len(files)
	for i := range files {
		f := &files[i]
		g, ok := byPath[f.Path]
		if trust && ok && g.Size == f.Size {
			f.SHA256, f.vouched = g.SHA256, true
			continue
		}
		exact = exact && ok && g.Size == f.Size
		sum, err := hashFile(ctx, f, buf, &prog)
		if err != nil {
			return nil, err
		}
		f.SHA256 = sum
		exact = exact && g.SHA256 == sum
	}
	man := orig
	if !exact {
		list := make([]manifest.File, len(files))
		for i, f := range files {
			list[i] = f.File
		}
		var err error
		if man, err = regenerate(doc, list, version.Version); err != nil {
			return nil, err
		}
		if len(man) > MaxManifestSize {
			return nil, &FileError{Path: dir, Err: ErrTooLarge, Detail: fmt.Sprintf("manifest would be %d bytes, limit %d", len(man), MaxManifestSize)}
		}
	}

	list := make([]manifest.File, len(files))
	for i, f := range files {
		list[i] = f.File
	}
	reports, err := readReports(files)
	if err != nil {
		return nil, err
	}
	prov, err := buildProvenance(man, list, reports)
	if err != nil {
		return nil, err
	}
	var sigFrame []byte
	res := &PackResult{Signatures: []SignatureInfo{}}
	if opts.Signer != nil {
		blob, err := signProvenance(prov, opts.Signer)
		if err != nil {
			return nil, err
		}
		sigFrame = encodeSigFrame([][]byte{blob})
		_, info, _ := checkSignature(blob, prov)
		info.Status = "valid"
		res.Signatures = append(res.Signatures, info)
	}

	level := opts.Level
	if level == "" || level == LevelAuto {
		m, _ := parseManifest(man)
		prec := ""
		if m != nil {
			prec = m.precision
		}
		level = LevelFor(prec)
	}
	zopts, err := encoderOptions(level, opts.workers)
	if err != nil {
		return nil, err
	}

	af, err := atomicfile.Create(out)
	if err != nil {
		return nil, err
	}
	defer af.Abort()
	sum := sha256.New() // of the compressed bytes, then of the whole file
	cw := &countWriter{w: io.MultiWriter(af, sum)}
	zw, err := zstd.NewWriter(cw, zopts...)
	if err != nil {
		return nil, err
	}
	zclosed := false
	defer func() {
		if !zclosed {
			zw.Close() // stops the encoder's goroutines; the output is discarded
		}
	}()
	tw := tar.NewWriter(zw)
	if err := writeManifestEntry(tw, man); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(entryHeader(ProvenanceName, int64(len(prov)))); err != nil {
		return nil, err
	}
	if _, err := tw.Write(prov); err != nil {
		return nil, err
	}
	for i := range files {
		if err := packFileEntry(ctx, tw, &files[i], buf, &prog); err != nil {
			if errors.Is(err, errStale) {
				if files[i].vouched {
					err = &FileError{Path: files[i].abs, Err: ErrHash, Detail: "differs from " + manifest.Name + "; " + rehashHint}
				} else {
					err = &FileError{Path: files[i].abs, Err: ErrChanged, Detail: "sha256 differs from the first pass"}
				}
			}
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	zclosed = true
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if _, err := cw.Write(sigFrame); err != nil {
		return nil, err
	}
	if _, err := io.MultiWriter(af, sum).Write(trailer(sum.Sum(nil))); err != nil {
		return nil, err
	}
	if err := af.CommitContext(ctx); err != nil {
		return nil, err
	}
	raw := fileBytes + int64(len(man)) + int64(len(prov))
	res.Bundle, res.SHA256, res.Bytes, res.RawBytes = out, hex.EncodeToString(sum.Sum(nil)), cw.n+int64(trailerLen), raw
	res.Files, res.Level, res.Manifest, res.FormatVersion = len(files)+2, level, "stored", FormatVersion
	if raw > 0 {
		res.Ratio = float64(res.Bytes) / float64(raw)
	}
	if !exact {
		res.Manifest = "rewritten"
	}
	return res, nil
}

// writeManifestEntry writes quantpack.json as the first entry, with the
// format version as a PAX record.
func writeManifestEntry(tw *tar.Writer, man []byte) error {
	hdr := entryHeader(manifest.Name, int64(len(man)))
	hdr.Format = tar.FormatPAX
	hdr.PAXRecords = map[string]string{VersionRecord: strconv.Itoa(FormatVersion)}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(man)
	return err
}

// entryHeader is the deterministic header of a regular file: fixed mode,
// owner and time, no user or group names.
func entryHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
}

// packFileEntry streams one file into the archive, hashing it on the way,
// and compares the hash with f.SHA256 (errStale when it differs).
func packFileEntry(ctx context.Context, tw *tar.Writer, f *packFile, buf []byte, prog *progress) error {
	r, err := openSameSize(f)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := tw.WriteHeader(entryHeader(f.Path, f.Size)); err != nil {
		return err
	}
	h := sha256.New()
	if err := copyExactly(ctx, io.MultiWriter(tw, h), r, f, buf, prog); err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return errStale
	}
	return nil
}

// hashFile returns the hex sha256 of f, checking its size.
func hashFile(ctx context.Context, f *packFile, buf []byte, prog *progress) (string, error) {
	r, err := openSameSize(f)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if err := copyExactly(ctx, h, r, f, buf, prog); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openSameSize opens f and checks it is still a regular file of the size
// listed.
func openSameSize(f *packFile) (*os.File, error) {
	r, err := os.Open(f.abs)
	if err != nil {
		return nil, err
	}
	fi, err := r.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() != f.Size) {
		err = &FileError{Path: f.abs, Err: ErrChanged, Detail: fmt.Sprintf("size %d, was %d", fi.Size(), f.Size)}
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// copyExactly copies f.Size bytes of r to w and checks that r then ends.
func copyExactly(ctx context.Context, w io.Writer, r io.Reader, f *packFile, buf []byte, prog *progress) error {
	var n int64
	for n < f.Size {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), f.Size-n)])
		if err != nil {
			return &FileError{Path: f.abs, Err: ErrChanged, Detail: fmt.Sprintf("read %d of %d bytes: %v", n+int64(k), f.Size, err)}
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n += int64(k)
		prog.add(int64(k))
	}
	if k, _ := r.Read(buf[:1]); k != 0 {
		return &FileError{Path: f.abs, Err: ErrChanged, Detail: fmt.Sprintf("grew past %d bytes", f.Size)}
	}
	return nil
}

// listFiles returns the regular files under dir except the top-level
// manifest, sorted by slash path. Anything else (symlink, device, fifo,
// socket) is an error: a bundle holds plain files only.
func listFiles(dir string) ([]packFile, error) {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r // DIR itself may be a link; nothing below it may
	}
	var files []packFile
	err := manifest.Walk(dir, func(rel, p string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return &FileError{Path: p, Err: ErrNotRegular, Detail: d.Type().String()}
		}
		if why := checkName(rel); why != "" {
			return &FileError{Path: p, Err: ErrUnsafePath, Detail: why}
		}
		if len(files) == MaxEntries {
			return &FileError{Path: dir, Err: ErrTooLarge, Detail: fmt.Sprintf("more than %d files", MaxEntries)}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, packFile{File: manifest.File{Path: rel, Size: fi.Size()}, abs: p})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// readDirManifest reads dir/quantpack.json when there is one. A manifest
// that is not a regular file, too large or not a JSON object is an error.
func readDirManifest(dir string) (raw []byte, files []manifest.File, doc map[string]json.RawMessage, err error) {
	p := filepath.Join(dir, manifest.Name)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, nil, &FileError{Path: p, Err: ErrNotRegular, Detail: fi.Mode().Type().String()}
	}
	if fi.Size() > MaxManifestSize {
		return nil, nil, nil, &FileError{Path: p, Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", fi.Size(), MaxManifestSize)}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(f, MaxManifestSize+1)); err != nil {
		return nil, nil, nil, err
	}
	if b.Len() > MaxManifestSize {
		return nil, nil, nil, &FileError{Path: p, Err: ErrTooLarge, Detail: fmt.Sprintf("more than %d bytes", MaxManifestSize)}
	}
	files, doc, err = manifest.ParseFiles(p, b.Bytes())
	if err != nil {
		return nil, nil, nil, err
	}
	return b.Bytes(), files, doc, nil
}

// checkOutsideDir refuses an output path inside the directory being packed:
// the temporary bundle would be packed into itself.
func checkOutsideDir(dir, out string) error {
	d, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	o, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if r, err := filepath.EvalSymlinks(d); err == nil {
		d = r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(o)); err == nil {
		o = filepath.Join(r, filepath.Base(o))
	}
	if rel, err := filepath.Rel(d, o); err == nil && rel != ".." && !startsWithDotDot(rel) {
		return &FileError{Path: out, Err: ErrOutputInside, Detail: "write the bundle outside " + dir}
	}
	return nil
}

// checkOutputFile refuses an output path that exists, unless overwrite is
// set and it is a regular file: a mistyped -o must not replace a bundle (or
// anything else) silently, and never a directory.
func checkOutputFile(out string, overwrite bool) error {
	fi, err := os.Lstat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return &FileError{Path: out, Err: ErrOutputFileExists, Detail: "it is a directory; name the bundle file"}
	case !overwrite:
		return &FileError{Path: out, Err: ErrOutputFileExists, Detail: "choose another name, or --force to replace it"}
	case !fi.Mode().IsRegular():
		return &FileError{Path: out, Err: ErrOutputFileExists, Detail: "it is not a regular file"}
	}
	return nil
}

func startsWithDotDot(rel string) bool {
	return len(rel) >= 3 && rel[:2] == ".." && os.IsPathSeparator(rel[2])
}

// progress forwards byte counts to a PackOptions/UnpackOptions callback.
type progress struct {
	fn    func(done, total int64)
	done  int64
	total int64
}

func (p *progress) add(n int64) {
	p.done += n
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// reportFormats are the "format" members of the JSON reports whose gates
// and measured values pack records in the provenance when they are packed
// with the artifact (verify --json, study's report.json).
var reportFormats = []string{"quantpack-verify/", "quantpack-study/"}

// readReports reads the top-level .json files that are quantpack reports.
// They are small; one larger than the manifest limit is not a report.
func readReports(files []packFile) ([]reportFile, error) {
	var out []reportFile
	for _, f := range files {
		if strings.Contains(f.Path, "/") || !strings.HasSuffix(f.Path, ".json") || f.Size > MaxManifestSize {
			continue
		}
		b, err := os.ReadFile(f.abs)
		if err != nil {
			return nil, err
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(b, &doc) != nil {
			continue
		}
		var format string
		json.Unmarshal(doc["format"], &format)
		for _, p := range reportFormats {
			if strings.HasPrefix(format, p) {
				sum := sha256.Sum256(b)
				out = append(out, reportFile{path: f.Path, sha256: hex.EncodeToString(sum[:]), doc: doc})
				break
			}
		}
	}
	return out, nil
}
