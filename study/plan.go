package study

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

// ErrSource is a SRC that cannot be studied (missing, not a checkpoint);
// every SRC is checked before the first cell runs.
var ErrSource = fault.New(fault.Invalid, "study: invalid SRC")

// describeAll opens every checkpoint for its architecture, parameter count
// and file sizes, in argument order, before anything is measured: a typo in
// the last SRC fails the study at once, not after hours. Names are made
// unique by suffixing -2, -3, …. Nothing is hashed here (hashSources does
// that once per model that has cells to run).
func describeAll(srcs []string, given map[string]string) ([]ModelInfo, error) {
	names := map[string]int{}
	var out []ModelInfo
	for i, src := range srcs {
		mi, err := describe(src, given[src], names)
		if err != nil {
			return nil, fmt.Errorf("%w: SRC %d (%s): %w", ErrSource, i+1, src, err)
		}
		out = append(out, mi)
	}
	return out, nil
}

// describe reads one checkpoint's header and file sizes. The model is
// called name when given (a Hub snapshot directory is named by its commit,
// so the caller names it by its repository), else by its directory;
// duplicates get -2, -3, ….
func describe(src, name string, names map[string]int) (ModelInfo, error) {
	s, err := convert.OpenSource(src, false)
	if err != nil {
		return ModelInfo{}, err
	}
	defer s.Close()
	if name == "" {
		name = filepath.Base(filepath.Clean(src))
	}
	names[name]++
	if n := names[name]; n > 1 {
		name = fmt.Sprintf("%s-%d", name, n)
	}
	mi := ModelInfo{Name: name, Path: src, Arch: s.ArchName()}
	if s.Arch != nil {
		mi.Family = s.Arch.Family
	}
	for _, e := range s.Ckpt.Tensors() {
		switch e.DType {
		case "F32", "F16", "BF16", "F64":
			mi.Params += e.NumElements()
		}
	}
	for _, f := range s.Ckpt.Files() {
		st, err := os.Stat(f)
		if err != nil {
			return mi, err
		}
		mi.Sources = append(mi.Sources, manifest.File{Path: filepath.Base(f), Size: st.Size()})
		mi.files = append(mi.files, f)
	}
	return mi, nil
}

// bytes is the model's total checkpoint size: the shard balancing weight.
func (mi ModelInfo) bytes() int64 {
	var n int64
	for _, s := range mi.Sources {
		n += s.Size
	}
	return n
}

// openSource opens a checkpoint file for hashing; tests replace it to count
// the bytes a study reads.
var openSource = func(path string) (io.ReadCloser, error) { return os.Open(path) }

// hashSources fills mi.Sources' sha256 sums, reading each file once. This is
// the study's only hash of the checkpoint: cell keys, export keys and the
// report all use it. A file whose size changed since describe is an error
// (the checkpoint is being rewritten under the study).
func hashSources(ctx context.Context, mi *ModelInfo) error {
	for i, path := range mi.files {
		if mi.Sources[i].SHA256 != "" {
			continue
		}
		f, err := openSource(path)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, ctxReader{ctx, f})
		f.Close()
		if err != nil {
			return fmt.Errorf("hash %s: %w", path, err)
		}
		if n != mi.Sources[i].Size {
			return fmt.Errorf("%w: %s changed size during the study (%d bytes, then %d)", ErrSource, path, mi.Sources[i].Size, n)
		}
		mi.Sources[i].SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return nil
}

// ctxReader stops a long read when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// inputsDigest hashes the comparison inputs that live in files: every
// regular file under --images (relative path and sha256, in walk order)
// and the --labels file, so that a changed image set is a cache miss, not
// a reused cell measured on other pictures. Empty without --images.
func inputsDigest(ctx context.Context, images, labels string) (string, error) {
	if images == "" {
		return "", nil
	}
	h := sha256.New()
	err := filepath.WalkDir(images, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := manifest.HashFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(images, p)
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", filepath.ToSlash(rel), f.Size, f.SHA256)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: --images %s: %w", ErrSource, images, err)
	}
	if labels != "" {
		f, err := manifest.HashFile(labels)
		if err != nil {
			return "", fmt.Errorf("%w: --labels: %w", ErrSource, err)
		}
		fmt.Fprintf(h, "labels\x00%s\n", f.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
