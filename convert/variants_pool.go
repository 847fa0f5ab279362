package convert

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/quantpack/quantpack/formats/onnx"
)

// Variant graphs keep their large initializers out of the graph: each one
// is written once into a data file that every variant graph of a Variants
// references as ONNX external data. A variant graph is then a few hundred
// KB of nodes whatever the model's size, so
//
//   - models past protobuf's 2 GiB (ViT-Huge, ViT-Giant) build and load
//     like small ones: nothing but the references goes through the
//     encoding;
//   - building a variant costs no weight bytes: the FP32 weights are
//     transposed and written once, not once per variant, and the graph
//     bytes a running session's caller holds are small;
//   - ONNX Runtime maps the data file (offsets on the page size), so
//     sessions of the same weights share the page cache instead of each
//     holding a copy of the graph bytes.
//
// The graphs are the same as inline ones node for node and byte for byte
// in every initializer (TestVariantPoolMatchesInline); only where the bytes
// live differs.

const (
	// variantDataFile is the pool's data file, in the Variants' temporary
	// folder.
	variantDataFile = "variants.data"
	// variantPoolThreshold: initializers of at least this many bytes go to
	// the pool, as export moves them to model.onnx.data.
	variantPoolThreshold = exportThreshold
)

// initPool is the data file and what it holds, by content key.
type initPool struct {
	dir       string
	threshold int64
	mu        sync.Mutex
	f         *os.File
	end       int64
	refs      map[string]onnx.ExternalRef
}

// newInitPool creates the data file in dir. threshold is the size from
// which an initializer goes to the pool.
func newInitPool(dir string, threshold int64) (*initPool, error) {
	f, err := os.OpenFile(filepath.Join(dir, variantDataFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &initPool{dir: dir, threshold: threshold, f: f, refs: map[string]onnx.ExternalRef{}}, nil
}

// externalize replaces each initializer of m's graph of at least the
// threshold's size by a reference into the pool, writing it there first if
// the pool does not hold it yet. m must be freshly built (its tensors are
// replaced in place).
func (p *initPool) externalize(m *onnx.Model) error {
	for i, t := range m.Graph.Initializers {
		if t.Raw == nil && t.Source == nil {
			continue // typed or already external: small or not ours
		}
		n, err := t.DataSize()
		if err != nil {
			return err
		}
		if n < p.threshold {
			continue
		}
		ref, err := p.put(t, n)
		if err != nil {
			return err
		}
		m.Graph.Initializers[i] = &onnx.Tensor{Name: t.Name, DataType: t.DataType, Dims: t.Dims, DocString: t.DocString,
			External: &onnx.ExternalRef{Location: variantDataFile, Offset: ref.Offset, Length: ref.Length}}
	}
	return nil
}

// put returns where the pool holds t's n bytes. A Source tensor with a
// SourceKey is found by its key without running Source; any other tensor by
// the sha256 of its bytes.
func (p *initPool) put(t *onnx.Tensor, n int64) (onnx.ExternalRef, error) {
	var raw []byte
	key := ""
	if t.Source != nil && t.Raw == nil && t.SourceKey != "" {
		key = "source:" + t.SourceKey
	} else {
		b, err := t.Data() // Raw as it is, or Source run into memory
		if err != nil {
			return onnx.ExternalRef{}, err
		}
		sum := sha256.Sum256(b)
		raw, key = b, "sha256:"+hex.EncodeToString(sum[:])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.refs[key]; ok {
		if r.Length != n {
			return onnx.ExternalRef{}, fmt.Errorf("convert: internal: initializer %q: pooled as %d bytes, now %d (key %s)", t.Name, r.Length, n, key)
		}
		return r, nil
	}
	const align = onnx.DefaultAlign // ONNX Runtime maps page-aligned data in place
	off := (p.end + align - 1) / align * align
	bw := bufio.NewWriterSize(io.NewOffsetWriter(p.f, off), 1<<20)
	cw := &limitWriter{w: bw, left: n}
	var err error
	if raw != nil {
		_, err = cw.Write(raw)
	} else {
		err = t.Source(cw)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && cw.left != 0 {
		err = fmt.Errorf("convert: internal: initializer %q wrote %d of %d bytes", t.Name, n-cw.left, n)
	}
	if err != nil {
		return onnx.ExternalRef{}, fmt.Errorf("convert: writing %s: %w", p.f.Name(), err)
	}
	r := onnx.ExternalRef{Location: variantDataFile, Offset: off, Length: n}
	p.refs[key], p.end = r, off+n
	return r, nil
}

// size is the data file's length.
func (p *initPool) size() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end
}

func (p *initPool) close() error { return p.f.Close() }

// limitWriter passes at most left bytes on.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > l.left {
		return 0, fmt.Errorf("convert: internal: an initializer writes more than its size")
	}
	n, err := l.w.Write(b)
	l.left -= int64(n)
	return n, err
}
