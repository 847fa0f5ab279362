// Package manifest reads and writes the file list that every quantpack
// artifact keeps in its quantpack.json: each file's path, size and sha256.
//
// The rest of quantpack.json belongs to the command that wrote it (convert,
// export, verify); this package only knows the "files" member, so that check,
// pack and unpack can verify any artifact without knowing its kind.
package manifest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/safeio"
)

// Name is the manifest's file name inside an artifact directory.
const Name = "quantpack.json"

// ProvenanceName is the bundle provenance statement (formats/bundle) that
// unpack writes beside Name. Like Name it describes the files rather than
// being one of them: Walk skips both at the top level.
const ProvenanceName = "quantpack.provenance.json"

// MaxSize caps a quantpack.json read from disk: a manifest lists one record
// per tensor and file, a few megabytes for the largest models.
const MaxSize = 64 << 20

// File is one entry of the manifest's file list. Path is slash-separated and
// relative to the artifact directory.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrInvalid marks a manifest that cannot be parsed.
var ErrInvalid = fault.New(fault.Invalid, "manifest: invalid quantpack.json")

// HashFile returns the size and hex sha256 of the file at path.
func HashFile(path string) (File, error) {
	return HashFileContext(context.Background(), path)
}

// HashModelFiles hashes an ONNX model and, when there is one, its external
// data file (model + ".data", the name export and quantize write), and
// returns them with their total size.
func HashModelFiles(model string) ([]File, int64, error) {
	var files []File
	var total int64
	for _, p := range []string{model, model + ".data"} {
		f, err := HashFile(p)
		if errors.Is(err, fs.ErrNotExist) && p != model {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		files = append(files, f)
		total += f.Size
	}
	return files, total, nil
}

// hashChunk is how much HashFileContext reads between checks of its
// context: a few milliseconds of hashing.
const hashChunk = 8 << 20

// HashFileContext is HashFile that stops with ctx's error within one
// hashChunk of ctx being cancelled: a multi-gigabyte checkpoint must not
// delay exit 130 by the seconds it takes to hash.
func HashFileContext(ctx context.Context, path string) (File, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return File{}, err
		}
		k, err := io.CopyN(h, f, hashChunk)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return File{}, fmt.Errorf("hash %s: %w", path, err)
		}
	}
	return File{Path: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// HashFiles hashes paths in order with HashFileContext.
func HashFiles(ctx context.Context, paths []string) ([]File, error) {
	out := make([]File, 0, len(paths))
	for _, p := range paths {
		f, err := HashFileContext(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Scan hashes every regular file under dir except the manifest itself and
// returns them sorted by path. Symlinks and other non-regular files are an
// error: artifacts hold plain files only.
func Scan(dir string) ([]File, error) {
	var out []File
	err := Walk(dir, func(rel, p string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: %w: not a regular file", p, ErrInvalid)
		}
		f, err := HashFile(p)
		if err != nil {
			return err
		}
		f.Path = rel
		out = append(out, f)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// Walk calls fn for every entry under dir that is not a directory, except
// the top-level manifest, with its slash-separated path relative to dir and
// its path on disk. Symlinks are not followed (fn sees them as such).
func Walk(dir string, fn func(rel, path string, d fs.DirEntry) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == Name || rel == ProvenanceName {
			return nil
		}
		return fn(rel, p, d)
	})
}

// ReadFiles returns the "files" list of dir/quantpack.json and the whole
// document as raw JSON members.
func ReadFiles(dir string) ([]File, map[string]json.RawMessage, error) {
	p := filepath.Join(dir, Name)
	b, err := safeio.ReadFile(p, MaxSize)
	if err != nil {
		return nil, nil, err
	}
	return ParseFiles(p, b)
}

// ParseFiles parses manifest bytes; name is used in errors.
func ParseFiles(name string, b []byte) ([]File, map[string]json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", name, ErrInvalid, err)
	}
	var files []File
	if raw, ok := doc["files"]; ok {
		if err := json.Unmarshal(raw, &files); err != nil {
			return nil, nil, fmt.Errorf("%s: %w: files: %v", name, ErrInvalid, err)
		}
	}
	return files, doc, nil
}

// Diff compares the manifest's list with what is on disk and returns one
// human-readable line per difference (missing, extra, size or hash changed).
func Diff(want, have []File) []string {
	w := map[string]File{}
	for _, f := range want {
		w[f.Path] = f
	}
	h := map[string]File{}
	for _, f := range have {
		h[f.Path] = f
	}
	var out []string
	for _, f := range want {
		g, ok := h[f.Path]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: missing", f.Path))
		case g.Size != f.Size:
			out = append(out, fmt.Sprintf("%s: size %d, manifest says %d", f.Path, g.Size, f.Size))
		case g.SHA256 != f.SHA256:
			out = append(out, fmt.Sprintf("%s: sha256 %s, manifest says %s", f.Path, g.SHA256, f.SHA256))
		}
	}
	for _, f := range have {
		if _, ok := w[f.Path]; !ok {
			out = append(out, fmt.Sprintf("%s: not in manifest", f.Path))
		}
	}
	return out
}
