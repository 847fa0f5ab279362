package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// File is one file of a resolved snapshot, as recorded in quantpack.json.
type File struct {
	Path   string `json:"path"`   // path in the repository, slash-separated
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // hex sha256 of the content
	Blob   string `json:"blob"`   // the blob's name in the cache: the Hub's ETag
}

// Source says exactly what a checkpoint came from. Endpoint and token are
// deliberately absent: the same commit gives the same record from any mirror
// and from the cache.
type Source struct {
	Repo     string `json:"repo"`
	Revision string `json:"revision"`
	Commit   string `json:"commit"`
	Files    []File `json:"files"`
}

// File returns the record of the file at path, or nil.
func (s *Source) File(path string) *File {
	if s == nil {
		return nil
	}
	for i := range s.Files {
		if s.Files[i].Path == path {
			return &s.Files[i]
		}
	}
	return nil
}

// sha256Hex matches an LFS file's ETag: its sha256.
var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// gitSHA1Hex matches a regular file's ETag: its git blob sha1.
var gitSHA1Hex = regexp.MustCompile(`^[0-9a-f]{40}$`)

// safeBlob is what an ETag must look like to become a file name in blobs/.
var safeBlob = regexp.MustCompile(`^[0-9A-Za-z_-][0-9A-Za-z_.-]{0,127}$`)

// repoCache is one repository's folder in the Hugging Face cache.
type repoCache struct {
	root   string // the cache directory
	folder string // models--org--name
	dir    string // root/folder
}

func newRepoCache(root, repo string) *repoCache {
	f := FolderName(repo)
	return &repoCache{root: root, folder: f, dir: filepath.Join(root, f)}
}

func (c *repoCache) snapshot(commit string) string {
	return filepath.Join(c.dir, "snapshots", commit)
}

func (c *repoCache) pointer(commit, file string) string {
	return filepath.Join(c.snapshot(commit), filepath.FromSlash(file))
}

func (c *repoCache) blob(etag string) string { return filepath.Join(c.dir, "blobs", etag) }

func (c *repoCache) noExist(commit, file string) string {
	return filepath.Join(c.dir, ".no_exist", commit, filepath.FromSlash(file))
}

func (c *repoCache) lockPath(etag string) string {
	return filepath.Join(c.root, ".locks", c.folder, etag+".lock")
}

// commitFor resolves a revision through the cache alone: a full commit hash
// names its snapshot directly, anything else is read from refs/<revision>.
func (c *repoCache) commitFor(rev string) (string, bool) {
	if commitHash.MatchString(rev) {
		_, err := os.Stat(c.snapshot(rev))
		return rev, err == nil
	}
	b, err := readSmall(filepath.Join(c.dir, "refs", filepath.FromSlash(rev)), 256)
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(b))
	return commit, commitHash.MatchString(commit)
}

// revisionOf names a commit by a ref that points at it ("main" first, then
// the others in name order), or by the commit itself.
func (c *repoCache) revisionOf(commit string) string {
	if b, err := readSmall(filepath.Join(c.dir, "refs", DefaultRevision), 256); err == nil && strings.TrimSpace(string(b)) == commit {
		return DefaultRevision
	}
	var found string
	root := filepath.Join(c.dir, "refs")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return nil
		}
		if b, err := readSmall(p, 256); err == nil && strings.TrimSpace(string(b)) == commit {
			rel, _ := filepath.Rel(root, p)
			found = filepath.ToSlash(rel)
		}
		return nil
	})
	if found != "" {
		return found
	}
	return commit
}

// writeRef records revision → commit as huggingface_hub does: only for a
// revision that is not itself the commit, only when it changed, and with
// no trailing newline.
func (c *repoCache) writeRef(rev, commit string) error {
	if rev == commit {
		return nil
	}
	p := filepath.Join(c.dir, "refs", filepath.FromSlash(rev))
	if b, err := readSmall(p, 256); err == nil && string(b) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, []byte(commit))
}

// has reports whether the snapshot holds file (following its link).
func (c *repoCache) has(commit, file string) bool {
	_, err := os.Stat(c.pointer(commit, file))
	return err == nil
}

// absent reports whether the cache knows that file is not in the repository.
func (c *repoCache) absent(commit, file string) bool {
	_, err := os.Stat(c.noExist(commit, file))
	return err == nil
}

// markAbsent writes the empty .no_exist marker huggingface_hub writes for a
// file a repository does not have.
func (c *repoCache) markAbsent(commit, file string) error {
	p := c.noExist(commit, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// link points snapshots/<commit>/<file> at blobs/<etag> with a relative
// symlink (huggingface_hub's _create_symlink: os.path.relpath from the
// link's directory), replacing whatever was there.
func (c *repoCache) link(commit, file, etag string) error {
	p := c.pointer(commit, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(p), c.blob(etag))
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(rel, p); err != nil {
		// Another process linked the same blob in between: fine.
		if t, rerr := os.Readlink(p); rerr == nil && t == rel {
			return nil
		}
		return err
	}
	return nil
}

// record describes a file already in the snapshot. An LFS blob's name is its
// sha256 (verified when it was written); anything else is hashed here, which
// costs little for the small regular files it concerns.
func (c *repoCache) record(commit, file string) (File, error) {
	p := c.pointer(commit, file)
	fi, err := os.Stat(p)
	if err != nil {
		return File{}, err
	}
	r := File{Path: file, Size: fi.Size()}
	if t, err := os.Readlink(p); err == nil {
		r.Blob = filepath.Base(t)
	}
	if sha256Hex.MatchString(r.Blob) {
		r.SHA256 = r.Blob
		return r, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return File{}, fmt.Errorf("hash %s: %w", p, err)
	}
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	return r, nil
}

// readSmall reads a file of at most max bytes (refs, markers).
func readSmall(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w: longer than %d bytes", p, ErrBadResponse, max)
	}
	return b, nil
}
