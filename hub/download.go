package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// downloader fetches files of one commit into the cache.
type downloader struct {
	c      *client
	rc     *repoCache
	repo   string
	commit string
	prog   *progress
}

// fetch makes file present in the snapshot and returns its record. A file
// already linked is not requested again.
func (d *downloader) fetch(ctx context.Context, file string) (File, error) {
	if d.rc.has(d.commit, file) {
		return d.rc.record(d.commit, file)
	}
	m, err := d.c.head(ctx, d.repo, d.commit, file)
	if err != nil {
		return File{}, err
	}
	if m.commit != "" && m.commit != d.commit {
		return File{}, &Error{Repo: d.repo, File: file, URL: m.location,
			Err: fmt.Errorf("%w: served commit %s, asked for %s", ErrBadResponse, m.commit, d.commit)}
	}
	sum, size, err := d.blob(ctx, file, m)
	if err != nil {
		return File{}, err
	}
	if err := d.rc.link(d.commit, file, m.etag); err != nil {
		return File{}, err
	}
	return File{Path: file, Size: size, SHA256: sum, Blob: m.etag}, nil
}

// blob makes blobs/<etag> exist and returns its sha256 and size. The bytes
// go to blobs/<etag>.incomplete, which a later run resumes with a Range
// request; it is renamed into place only once its hash matches the ETag.
func (d *downloader) blob(ctx context.Context, file string, m fileMeta) (string, int64, error) {
	unlock, err := lockFile(ctx, d.rc.lockPath(m.etag))
	if err != nil {
		return "", 0, err
	}
	defer unlock()
	dst := d.rc.blob(m.etag)
	if fi, err := os.Stat(dst); err == nil && (m.size < 0 || fi.Size() == m.size) {
		// Another file, revision or process brought it.
		d.prog.add(fi.Size(), fi.Size())
		if sha256Hex.MatchString(m.etag) {
			return m.etag, fi.Size(), nil
		}
		h, _, err := hashFile(dst, m.etag, fi.Size())
		if err != nil {
			return "", 0, err
		}
		return hex.EncodeToString(h.sha256.Sum(nil)), fi.Size(), nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	inc := dst + ".incomplete"
	f, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	off := st.Size()
	if m.size >= 0 && off > m.size {
		if err := f.Truncate(0); err != nil {
			return "", 0, err
		}
		off = 0
	}
	// The whole file is verified, so resumed bytes are hashed again first.
	hs := newHashes(m.etag, m.size)
	if _, err := io.Copy(hs, io.NewSectionReader(f, 0, off)); err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", inc, err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", 0, err
	}
	d.prog.add(off, max(m.size, off))
	off, err = d.stream(ctx, file, m, f, hs, off)
	if err != nil {
		if errors.Is(err, ErrChecksum) {
			f.Close()
			os.Remove(inc)
		} else {
			f.Sync() // keep what we have for the next run
		}
		return "", 0, err
	}
	if m.size >= 0 && off != m.size {
		return "", 0, d.fail(file, m, ErrIncomplete, fmt.Sprintf("got %d of %d bytes; run again to resume", off, m.size))
	}
	if bad := hs.check(m.etag); bad != "" {
		f.Close()
		os.Remove(inc)
		return "", 0, d.fail(file, m, ErrChecksum, bad+"; the partial blob was deleted, run again to download it afresh")
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(inc, dst); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(hs.sha256.Sum(nil)), off, nil
}

func (d *downloader) fail(file string, m fileMeta, sentinel error, hint string) error {
	return &Error{Repo: d.repo, File: file, URL: m.location, Err: sentinel, Hint: hint}
}

// stream GETs the rest of the file from off, retrying cut connections with
// a Range request from where they stopped. It returns the new length.
func (d *downloader) stream(ctx context.Context, file string, m fileMeta, f *os.File, hs *hashes, off int64) (int64, error) {
	c := d.c
	fails := 0
	for m.size < 0 || off < m.size {
		// Each attempt has its own context so that a stalled body can be
		// cut without cancelling the run.
		actx, cancel := context.WithCancel(ctx)
		stall := time.AfterFunc(c.idle, cancel)
		resp, err := c.do(actx, func() (*http.Request, error) {
			req, err := c.request(actx, http.MethodGet, m.location)
			if err == nil && off > 0 {
				req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
			}
			return req, err
		})
		if err != nil {
			stall.Stop()
			cancel()
			if ctx.Err() != nil {
				return off, ctx.Err()
			}
			return off, d.fail(file, m, err, fmt.Sprintf("got %d bytes so far; run again to resume", off))
		}
		switch {
		case resp.StatusCode == http.StatusPartialContent && off > 0 &&
			strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(off, 10)+"-"):
		case resp.StatusCode == http.StatusOK:
			if off > 0 { // the server ignored the Range: start over
				if err := restart(f, hs, m); err != nil {
					resp.Body.Close()
					cancel()
					return 0, err
				}
				d.prog.add(-off, 0)
				off = 0
			}
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			resp.Body.Close()
			stall.Stop()
			cancel()
			if err := restart(f, hs, m); err != nil {
				return 0, err
			}
			d.prog.add(-off, 0)
			off = 0
			fails++
			if fails > c.retries {
				return 0, d.fail(file, m, ErrBadResponse, "the server refuses the Range request")
			}
			continue
		default:
			defer cancel()
			defer resp.Body.Close()
			if resp.StatusCode >= 300 {
				return off, c.statusError(resp, d.repo, file)
			}
			return off, d.fail(file, m, ErrBadResponse, "unexpected HTTP "+resp.Status)
		}
		stall.Reset(c.idle)
		n, err := d.copy(ctx, f, hs, resp.Body, m, off, stall)
		resp.Body.Close()
		stall.Stop()
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no data for %v", c.idle)
		}
		cancel()
		off += n
		if err == nil {
			if m.size < 0 || off >= m.size {
				return off, nil
			}
			err = io.ErrUnexpectedEOF // the server closed early
		}
		if ctx.Err() != nil {
			return off, ctx.Err()
		}
		var we writeError
		if errors.As(err, &we) {
			return off, d.fail(file, m, err, "free space in the cache (or point HF_HUB_CACHE elsewhere) and run again; the partial blob is kept")
		}
		if errors.Is(err, ErrChecksum) || !isNetErr(err) {
			return off, d.fail(file, m, err, "")
		}
		if n > 0 {
			fails = 0 // progress was made: a flaky link, not a dead one
		}
		fails++
		if fails > c.retries {
			return off, d.fail(file, m, ErrIncomplete, fmt.Sprintf("%v after %d bytes; run again to resume", err, off))
		}
		if err := c.wait(ctx, fails-1, nil); err != nil {
			return off, err
		}
	}
	return off, nil
}

// copy writes body into f and the hashes, resetting the stall timer on
// every read. A body longer than announced is a checksum failure.
func (d *downloader) copy(ctx context.Context, f *os.File, hs *hashes, body io.Reader, m fileMeta, off int64, stall *time.Timer) (int64, error) {
	if m.size >= 0 {
		body = io.LimitReader(body, m.size-off+1)
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := body.Read(buf)
		stall.Reset(d.c.idle)
		if k > 0 {
			if m.size >= 0 && off+n+int64(k) > m.size {
				return n, fmt.Errorf("%w: the server sent more than the %d bytes it announced", ErrChecksum, m.size)
			}
			if _, err := f.Write(buf[:k]); err != nil {
				return n, writeError{err} // disk full lands here; err names the file
			}
			hs.Write(buf[:k])
			n += int64(k)
			d.prog.add(int64(k), 0)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// writeError is a failure to write the cache (a full disk): not retried.
type writeError struct{ error }

func (w writeError) Unwrap() error { return w.error }

// restart empties a partial blob.
func restart(f *os.File, hs *hashes, m fileMeta) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	*hs = *newHashes(m.etag, m.size)
	return nil
}

// hashes computes a file's sha256 and, when its ETag is a git blob id, the
// git blob sha1 ("blob <size>\x00" + content) in one pass.
type hashes struct {
	sha256 hash.Hash
	git    hash.Hash // nil unless the ETag is a 40-hex git id and the size is known
}

func newHashes(etag string, size int64) *hashes {
	h := &hashes{sha256: sha256.New()}
	if gitSHA1Hex.MatchString(etag) && size >= 0 {
		h.git = sha1.New()
		fmt.Fprintf(h.git, "blob %d\x00", size)
	}
	return h
}

func (h *hashes) Write(p []byte) (int, error) {
	h.sha256.Write(p)
	if h.git != nil {
		h.git.Write(p)
	}
	return len(p), nil
}

// check compares the hashes with the ETag and describes a mismatch. An ETag
// that is neither a sha256 nor a git id (some mirrors) is checked by size
// only.
func (h *hashes) check(etag string) string {
	switch {
	case sha256Hex.MatchString(etag):
		if got := hex.EncodeToString(h.sha256.Sum(nil)); got != etag {
			return "sha256 " + got + ", ETag says " + etag
		}
	case h.git != nil:
		if got := hex.EncodeToString(h.git.Sum(nil)); got != etag {
			return "git blob sha1 " + got + ", ETag says " + etag
		}
	}
	return ""
}

func hashFile(p, etag string, size int64) (*hashes, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	hs := newHashes(etag, size)
	n, err := io.Copy(hs, f)
	return hs, n, err
}

// progress totals bytes over the files downloading in parallel.
type progress struct {
	mu          sync.Mutex
	done, total int64
	fn          func(done, total int64)
}

func (p *progress) add(done, total int64) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += done
	p.total += total
	p.fn(p.done, p.total)
}
