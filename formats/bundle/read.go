package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/quantpack/quantpack/internal/manifest"
)

// reader walks a bundle stream entry by entry and checks its structure:
// the manifest first, then regular files with safe, unique names, then the
// end-of-archive marker and the end of the zstd stream (whose checksum the
// decoder verifies only when it is read to the end). What to do with each
// entry (write it, hash it) is the caller's.
type reader struct {
	bundle string
	ctx    context.Context
	src    *sourceReader // compressed bytes
	zr     *zstd.Decoder
	raw    *limitCounter // uncompressed tar stream
	tr     *tar.Reader
	index  int    // current entry
	name   string // current entry's name
	seen   map[string]bool
	man    *bundleManifest
	manRaw []byte
	buf    []byte

	version int    // bundle format version read from the first entry
	prov    []byte // the provenance entry (version ≥ 2)
	sigs    [][]byte
	sigLen  int   // bytes of the signature frame (0: none)
	sigErr  error // the signature frame could not be parsed
}

// openReader starts reading a bundle from r and reads its manifest. The
// declared total may not exceed opts.MaxBytes, nor opts.MaxRatio times the
// bundle's size when known; the uncompressed stream may not exceed MaxBytes
// plus maxStreamOverhead. The caller must call close.
func openReader(ctx context.Context, r io.Reader, bundle string, opts UnpackOptions, prog *progress) (*reader, error) {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	src := &sourceReader{r: r, ctx: ctx, prog: prog, tail: newTailHasher(), last: &lastBytes{n: maxSigFrame + trailerLen}}
	rd := &reader{bundle: bundle, ctx: ctx, src: src, index: -1, seen: map[string]bool{}, buf: make([]byte, copyBufSize)}
	overhead := int64(maxStreamOverhead)
	if opts.overhead > 0 {
		overhead = opts.overhead
	}
	rd.raw = &limitCounter{limit: saturatingAdd(maxBytes, overhead)}
	zr, err := zstd.NewReader(src, zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow))
	if err != nil {
		return nil, err
	}
	rd.zr, rd.raw.r = zr, zr
	rd.tr = tar.NewReader(rd.raw)
	if err := rd.readManifest(maxBytes); err != nil {
		rd.close()
		return nil, err
	}
	if err := rd.checkRatio(opts); err != nil {
		rd.close()
		return nil, err
	}
	if rd.version >= 2 {
		if err := rd.readProvenance(); err != nil {
			rd.close()
			return nil, err
		}
	}
	return rd, nil
}

func (rd *reader) close() { rd.zr.Close() }

// fail returns an EntryError at the current entry and stream position.
func (rd *reader) fail(sentinel error, format string, args ...any) error {
	return &EntryError{Bundle: rd.bundle, Index: rd.index, Name: rd.name, Offset: rd.raw.n, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// streamErr classifies an error met while reading the stream: the caller's
// cancellation and read errors of the source pass through, the size limit
// becomes ErrTooLarge, anything else is corruption.
func (rd *reader) streamErr(err error) error {
	if cerr := rd.ctx.Err(); cerr != nil {
		return cerr
	}
	if serr := rd.src.error(); serr != nil && !errors.Is(serr, io.EOF) {
		return fmt.Errorf("%s: read: %w", rd.bundle, serr)
	}
	if errors.Is(err, errLimit) {
		return rd.fail(ErrTooLarge, "uncompressed stream longer than %d bytes", rd.raw.limit)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return rd.fail(ErrCorrupt, "%v", err)
}

func (rd *reader) readManifest(maxBytes int64) error {
	hdr, err := rd.nextHeader()
	if errors.Is(err, io.EOF) {
		return rd.fail(ErrManifest, "empty archive")
	}
	if err != nil {
		return err
	}
	if hdr.Name != manifest.Name {
		return rd.fail(ErrManifest, "first entry is not %s", manifest.Name)
	}
	v, ok := hdr.PAXRecords[VersionRecord]
	if !ok {
		return rd.fail(ErrManifest, "no %s record: not a quantpack bundle", VersionRecord)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > FormatVersion {
		return rd.fail(ErrVersion, "version %q, this quantpack reads 1 to %d", v, FormatVersion)
	}
	rd.version = n
	if hdr.Size > MaxManifestSize {
		return rd.fail(ErrManifest, "%d bytes, limit %d", hdr.Size, MaxManifestSize)
	}
	var b bytes.Buffer
	if n, err := io.CopyBuffer(&b, rd.tr, rd.buf); err != nil || n != hdr.Size {
		return rd.streamErr(errOr(err, io.ErrUnexpectedEOF))
	}
	m, why := parseManifest(b.Bytes())
	if m == nil {
		return rd.fail(ErrManifest, "%s", why)
	}
	if m.total > maxBytes {
		return rd.fail(ErrTooLarge, "manifest declares %d bytes, limit %d", m.total, maxBytes)
	}
	rd.man, rd.manRaw = m, b.Bytes()
	return nil
}

// checkRatio refuses a bundle that declares more than MaxRatio unpacked
// bytes per bundle byte (a decompression bomb), past ratioFloor.
func (rd *reader) checkRatio(opts UnpackOptions) error {
	ratio := opts.MaxRatio
	if ratio <= 0 {
		ratio = DefaultMaxRatio
	}
	total := rd.man.total
	if opts.size <= 0 || total <= ratioFloor || float64(total) <= ratio*float64(opts.size) {
		return nil
	}
	return rd.fail(ErrTooLarge, "manifest declares %d bytes from a %d-byte bundle, a compression ratio of %.0f (limit %g; --max-ratio raises it)",
		total, opts.size, float64(total)/float64(opts.size), ratio)
}

// nextHeader reads the next entry's header and checks that it is a regular
// file with a safe name seen for the first time. It returns io.EOF after the
// end-of-archive marker, having checked the rest of the stream.
func (rd *reader) nextHeader() (*tar.Header, error) {
	if err := rd.ctx.Err(); err != nil {
		return nil, err
	}
	hdr, err := rd.tr.Next()
	if errors.Is(err, io.EOF) {
		if err := rd.finish(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	rd.index++
	rd.name = ""
	if hdr != nil {
		rd.name = hdr.Name
	}
	if err != nil && !(hdr != nil && errors.Is(err, tar.ErrInsecurePath)) {
		return nil, rd.streamErr(err)
	}
	if rd.index >= MaxEntries+1 {
		return nil, rd.fail(ErrTooLarge, "more than %d entries", MaxEntries+1)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, rd.fail(ErrEntryType, "type %s", typeName(hdr.Typeflag))
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, rd.fail(ErrEntryType, "sparse file")
		}
	}
	if why := checkName(hdr.Name); why != "" {
		return nil, rd.fail(ErrUnsafePath, "%s", why)
	}
	if rd.seen[hdr.Name] || (rd.index > 0 && hdr.Name == manifest.Name) || (rd.index != 1 && hdr.Name == ProvenanceName) {
		return nil, rd.fail(ErrDuplicate, "name seen before")
	}
	rd.seen[hdr.Name] = true
	return hdr, nil
}

// copyEntry copies the current entry's size bytes to w.
func (rd *reader) copyEntry(w io.Writer, size int64) error {
	var n int64
	for n < size {
		if err := rd.ctx.Err(); err != nil {
			return err
		}
		k, err := io.ReadFull(rd.tr, rd.buf[:min(int64(len(rd.buf)), size-n)])
		if err != nil {
			return rd.streamErr(err)
		}
		if _, err := w.Write(rd.buf[:k]); err != nil {
			return err
		}
		n += int64(k)
	}
	return nil
}

// finish checks what follows the end-of-archive marker: zero padding of at
// most maxTrailer bytes, then the end of the zstd stream. Reading to the end
// makes the decoder verify the last frame's checksum.
func (rd *reader) finish() error {
	var pad int64
	for {
		k, err := rd.raw.Read(rd.buf)
		for _, c := range rd.buf[:k] {
			if c != 0 {
				return rd.fail(ErrCorrupt, "data after the end-of-archive marker")
			}
		}
		pad += int64(k)
		if pad > maxTrailer {
			return rd.fail(ErrCorrupt, "more than %d bytes of padding after the end-of-archive marker", maxTrailer)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rd.streamErr(err)
		}
	}
	// The decoder has consumed its input up to the end; read whatever it
	// left (nothing, normally) so that the trailer is the file's last bytes.
	for {
		_, err := rd.src.Read(rd.buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rd.streamErr(err)
		}
	}
	if why := rd.src.checkTrailer(); why != "" {
		return rd.fail(ErrCorrupt, "%s", why)
	}
	last := rd.src.last.bytes()
	rd.sigLen, rd.sigs, rd.sigErr = findSigFrame(last[:len(last)-trailerLen])
	return nil
}

// readProvenance reads the second entry of a version-2 bundle, the
// provenance statement, and checks that it describes exactly the manifest
// and the files it lists.
func (rd *reader) readProvenance() error {
	hdr, err := rd.nextHeader()
	if errors.Is(err, io.EOF) {
		return rd.fail(ErrManifest, "no %s entry", ProvenanceName)
	}
	if err != nil {
		return err
	}
	if hdr.Name != ProvenanceName {
		return rd.fail(ErrManifest, "second entry is not %s", ProvenanceName)
	}
	if hdr.Size > maxProvenanceSize {
		return rd.fail(ErrManifest, "provenance is %d bytes, limit %d", hdr.Size, maxProvenanceSize)
	}
	var b bytes.Buffer
	if n, err := io.CopyBuffer(&b, rd.tr, rd.buf); err != nil || n != hdr.Size {
		return rd.streamErr(errOr(err, io.ErrUnexpectedEOF))
	}
	if why := checkProvenance(b.Bytes(), rd.manRaw, rd.man); why != "" {
		return rd.fail(ErrManifest, "provenance: %s", why)
	}
	rd.prov = b.Bytes()
	return nil
}

// judge checks the signatures read at the end of the stream against policy
// (nil: report them only). Call it after the end of the archive.
func (rd *reader) judge(policy *TrustPolicy) ([]SignatureInfo, error) {
	if rd.sigErr != nil {
		return nil, fmt.Errorf("%s: %w: %v", rd.bundle, ErrSignature, rd.sigErr)
	}
	if rd.prov == nil {
		if policy != nil {
			return nil, fmt.Errorf("%s: %w: %v", rd.bundle, ErrSignature, errNoProvenance)
		}
		return nil, nil
	}
	return judgeSignatures(rd.sigs, rd.prov, policy, rd.bundle)
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func saturatingAdd(a, b int64) int64 {
	if a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeXGlobalHeader:
		return "PAX global header"
	case tar.TypeGNUSparse:
		return "GNU sparse file"
	}
	return strconv.QuoteRune(rune(t))
}

// errLimit is returned by limitCounter past its limit.
var errLimit = errors.New("bundle: stream limit reached")

// limitCounter counts bytes read and fails past limit.
type limitCounter struct {
	r     io.Reader
	n     int64
	limit int64
}

func (l *limitCounter) Read(p []byte) (int, error) {
	if l.n >= l.limit {
		// One byte more tells a stream that ends exactly at the limit
		// from one that goes on.
		var one [1]byte
		if k, _ := l.r.Read(one[:]); k == 0 {
			return 0, io.EOF
		}
		return 0, errLimit
	}
	if rem := l.limit - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	return k, err
}

// sourceReader wraps the compressed input: it stops on cancellation,
// reports progress and remembers the source's own error, so that a disk
// error is not reported as a corrupt bundle. The zstd decoder reads it from
// its own goroutine, hence the mutex.
type sourceReader struct {
	r    io.Reader
	ctx  context.Context
	prog *progress
	mu   sync.Mutex
	err  error
	tail *tailHasher // hashes all but the trailer
	last *lastBytes  // the trailer and the signature frame before it
}

func (s *sourceReader) checkTrailer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tail.check()
}

func (s *sourceReader) error() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	k, err := s.r.Read(p)
	if s.prog != nil && k > 0 {
		s.prog.add(int64(k))
	}
	s.mu.Lock()
	s.tail.write(p[:k])
	s.last.write(p[:k])
	if err != nil && s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	return k, err
}
