package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// TensorSpec declares a tensor to be written.
type TensorSpec struct {
	Name  string
	DType DType
	Shape []int64
}

// sink is where a Writer puts its bytes: an atomicfile.File, or in tests a
// wrapper that fails on purpose.
type sink interface {
	io.WriterAt
	Commit() error
	Abort()
}

// tensor write states.
const (
	pending = iota
	writing
	written
)

// Writer writes one safetensors file whose layout was fixed at Create.
// WriteTensor may be called from several goroutines at once.
type Writer struct {
	path  string
	out   sink
	specs []TensorSpec // file order: sorted by name
	infos []TensorInfo // same order, with absolute offsets
	index map[string]int
	size  int64

	mu       sync.Mutex
	state    []uint8
	left     int
	err      error // first write error
	finished bool
}

// Create lays out the file from specs (sorted by name, offsets computed,
// header padded with spaces to a multiple of 8) and writes the header to a
// temporary file beside path. Tensor data follows through WriteTensor in any
// order; Commit renames the file into place. Nothing is left at path or
// beside it unless Commit succeeds. Identical input gives identical bytes.
func Create(path string, metadata map[string]string, specs []TensorSpec) (*Writer, error) {
	return create(path, metadata, specs, func(p string) (sink, error) { return atomicfile.Create(p) })
}

func create(path string, metadata map[string]string, specs []TensorSpec, open func(string) (sink, error)) (*Writer, error) {
	header, sorted, infos, size, err := layout(metadata, specs)
	if err != nil {
		return nil, err
	}
	out, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: create %s: %w", path, err)
	}
	if _, err := out.WriteAt(header, 0); err != nil {
		out.Abort()
		return nil, fmt.Errorf("safetensors: write %s: header: %w", path, err)
	}
	w := &Writer{path: path, out: out, specs: sorted, infos: infos, size: size,
		index: make(map[string]int, len(sorted)), state: make([]uint8, len(sorted)), left: len(sorted)}
	for i, s := range sorted {
		w.index[s.Name] = i
	}
	return w, nil
}

// layout validates specs and computes the header bytes, the file order, each
// tensor's absolute offset and the file size.
func layout(metadata map[string]string, specs []TensorSpec) ([]byte, []TensorSpec, []TensorInfo, int64, error) {
	sorted := make([]TensorSpec, len(specs))
	for i, s := range specs {
		sorted[i] = TensorSpec{Name: s.Name, DType: s.DType, Shape: slices.Clone(s.Shape)}
		if sorted[i].Shape == nil {
			sorted[i].Shape = []int64{}
		}
	}
	slices.SortFunc(sorted, func(a, b TensorSpec) int { return strings.Compare(a.Name, b.Name) })

	bad := func(name, format string, args ...any) error {
		return &FormatError{Tensor: name, Offset: noOffset, Msg: fmt.Sprintf(format, args...), Err: ErrBadSpec}
	}
	// Encoding only lengthens strings, so their raw length bounds the
	// header from below: refuse early, before encoding 100 MB.
	minHeader := 0
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, nil, 0, bad("", "metadata %q is not valid UTF-8", k)
		}
		minHeader += len(k) + len(v)
	}
	for _, s := range sorted {
		minHeader += len(s.Name)
	}
	if minHeader > MaxHeaderSize {
		return nil, nil, nil, 0, bad("", "names and metadata exceed the %d-byte header limit", MaxHeaderSize)
	}
	infos := make([]TensorInfo, len(sorted))
	var data int64
	for i, s := range sorted {
		switch {
		case s.Name == "__metadata__":
			return nil, nil, nil, 0, bad(s.Name, "reserved name")
		case !utf8.ValidString(s.Name):
			return nil, nil, nil, 0, bad(s.Name, "name is not valid UTF-8")
		case i > 0 && s.Name == sorted[i-1].Name:
			return nil, nil, nil, 0, bad(s.Name, "name given twice")
		case !s.DType.Valid():
			return nil, nil, nil, 0, bad(s.Name, "unknown dtype %q", s.DType)
		case len(s.Shape) > MaxDims:
			return nil, nil, nil, 0, bad(s.Name, "%d dimensions, more than %d", len(s.Shape), MaxDims)
		case slices.ContainsFunc(s.Shape, func(d int64) bool { return d < 0 }):
			return nil, nil, nil, 0, bad(s.Name, "negative dimension in %s", shapeString(s.Shape))
		}
		_, n, ok := byteSize(s.Shape, s.DType.Size())
		if !ok || n > math.MaxInt64-data {
			return nil, nil, nil, 0, bad(s.Name, "shape %s makes the file larger than 2^63 bytes", shapeString(s.Shape))
		}
		infos[i] = TensorInfo{Name: s.Name, DType: s.DType, Shape: s.Shape, Offset: data, Size: n}
		data += n
	}

	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		b.WriteString(`"__metadata__":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	for i, t := range infos {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		fmt.Fprintf(&b, `:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, t.DType, shapeString(t.Shape), t.Offset, t.Offset+t.Size)
	}
	b.WriteByte('}')
	// Pad with spaces so that tensor data starts 8-byte aligned.
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, nil, nil, 0, bad("", "header of %d bytes exceeds the limit of %d", b.Len(), MaxHeaderSize)
	}
	headerSize := int64(lengthSize + b.Len())
	if data > math.MaxInt64-headerSize {
		return nil, nil, nil, 0, bad("", "file larger than 2^63 bytes")
	}
	header := make([]byte, headerSize)
	binary.LittleEndian.PutUint64(header, uint64(b.Len()))
	copy(header[lengthSize:], b.Bytes())
	for i := range infos {
		infos[i].Offset += headerSize
	}
	return header, sorted, infos, headerSize + data, nil
}

// writeJSONString writes s as a JSON string without HTML escaping, so names
// read back byte for byte as they are in the header.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // cannot fail for a string
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// Specs returns the tensors in file order (sorted by name).
func (w *Writer) Specs() []TensorSpec { return slices.Clone(w.specs) }

// Size returns the final file size in bytes.
func (w *Writer) Size() int64 { return w.size }

// WriteTensor writes the data of one tensor; len(data) must be its size.
// Each tensor is written exactly once, in any order, from any goroutine.
func (w *Writer) WriteTensor(name string, data []byte) error {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return ErrClosed
	}
	i, ok := w.index[name]
	if !ok {
		w.mu.Unlock()
		return &FormatError{File: w.path, Tensor: name, Offset: noOffset, Msg: "not declared at Create", Err: ErrUnknownTensor}
	}
	t := w.infos[i]
	if w.state[i] != pending {
		w.mu.Unlock()
		return &FormatError{File: w.path, Tensor: name, Offset: t.Offset, Err: ErrWrittenTwice}
	}
	if int64(len(data)) != t.Size {
		w.mu.Unlock()
		return &FormatError{File: w.path, Tensor: name, Offset: t.Offset,
			Msg: fmt.Sprintf("got %d bytes, tensor %s %s is %d", len(data), t.DType, shapeString(t.Shape), t.Size), Err: ErrDataLength}
	}
	w.state[i] = writing
	w.mu.Unlock()

	_, err := w.out.WriteAt(data, t.Offset)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("safetensors: write %s: tensor %q at byte %d: %w", w.path, name, t.Offset, err)
		if w.err == nil {
			w.err = err
		}
		return err
	}
	w.state[i] = written
	w.left--
	return nil
}

// Commit checks that every tensor was written, then fsyncs the file and
// renames it into place. On any failure the temporary file is removed.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return ErrClosed
	}
	w.finished = true
	if w.err != nil {
		w.out.Abort()
		return w.err
	}
	if w.left > 0 {
		w.out.Abort()
		var missing []string
		for i, s := range w.state {
			if s != written {
				missing = append(missing, w.specs[i].Name)
				if len(missing) == 3 {
					break
				}
			}
		}
		return &FormatError{File: w.path, Tensor: missing[0], Offset: noOffset,
			Msg: fmt.Sprintf("%d of %d tensors not written (%s)", w.left, len(w.specs), strings.Join(quoteAll(missing), ", ")), Err: ErrIncomplete}
	}
	if err := w.out.Commit(); err != nil {
		return fmt.Errorf("safetensors: commit %s: %w", w.path, err)
	}
	return nil
}

// Abort removes the temporary file. It is a no-op after Commit or Abort, so
// `defer w.Abort()` is the idiom.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return
	}
	w.finished = true
	w.out.Abort()
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
