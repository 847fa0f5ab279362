package safetensors

import (
	"io"
	"slices"
	"sync/atomic"

	"github.com/quantpack/quantpack/internal/safeio"
)

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int64 // empty for a 0-dim (scalar) tensor
	Offset int64   // absolute byte offset of the tensor's data in the file
	Size   int64   // bytes
}

// NumElements returns the product of the shape (1 for a scalar), or -1 if
// it overflows int64 (never for a tensor read from a valid file).
func (t TensorInfo) NumElements() int64 {
	n, _, ok := byteSize(t.Shape, 1)
	if !ok {
		return -1
	}
	return n
}

// File is one validated safetensors file. Its methods may be called from
// several goroutines at once, but not concurrently with Close.
type File struct {
	name       string
	r          io.ReaderAt
	data       []byte // the whole file when memory-mapped, else nil
	release    func() error
	closed     atomic.Bool
	size       int64
	headerSize int64
	tensors    []TensorInfo
	index      map[string]int
	meta       map[string]string
}

// Open memory-maps path read-only (falling back to reads where mapping is not
// available) and validates its header and layout. Tensor data is not read.
// As with any mapping, truncating the file while it is open makes later
// accesses fault; checkpoints are not expected to change under us.
func Open(path string) (*File, error) {
	osf, err := safeio.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, err
	}
	if st.IsDir() {
		osf.Close()
		return nil, errAt(ErrNoCheckpoint, path, "", noOffset, "is a directory (use OpenCheckpoint)")
	}
	size := st.Size()
	data, unmap := mapFile(osf, size)
	if data == nil {
		f, err := newFile(osf, nil, size, path)
		if err != nil {
			osf.Close()
			return nil, err
		}
		f.release = osf.Close
		return f, nil
	}
	// The mapping outlives the descriptor.
	osf.Close()
	f, err := newFile(nil, data, size, path)
	if err != nil {
		unmap()
		return nil, err
	}
	f.r = mappedReader{f}
	f.release = unmap
	return f, nil
}

// NewFile validates the safetensors file of size bytes that r holds; name is
// used in errors and by Name. Bytes returns copies for such a File. Close
// does not close r.
func NewFile(r io.ReaderAt, size int64, name string) (*File, error) {
	return newFile(r, nil, size, name)
}

func newFile(r io.ReaderAt, data []byte, size int64, name string) (*File, error) {
	hdr, err := readHeader(r, data, size, name)
	if err != nil {
		return nil, err
	}
	entries, meta, err := parseHeader(hdr, name)
	if err != nil {
		return nil, err
	}
	headerSize := lengthSize + int64(len(hdr))
	tensors, err := validate(entries, headerSize, size-headerSize, name)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(tensors))
	for i, t := range tensors {
		index[t.Name] = i
	}
	if len(meta) == 0 {
		meta = nil
	}
	return &File{name: name, r: r, data: data, size: size, headerSize: headerSize,
		tensors: tensors, index: index, meta: meta}, nil
}

// Name returns the path given to Open or the name given to NewFile.
func (f *File) Name() string { return f.name }

// Size returns the file size in bytes.
func (f *File) Size() int64 { return f.size }

// Tensors returns the tensors in data-offset order. The slice is a copy; the
// shapes are shared and must not be modified.
func (f *File) Tensors() []TensorInfo { return slices.Clone(f.tensors) }

// Lookup finds a tensor by name.
func (f *File) Lookup(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// Metadata returns the "__metadata__" map, or nil if the file has none (or
// an empty one). It is shared and must not be modified.
func (f *File) Metadata() map[string]string { return f.meta }

// HeaderSize returns 8 + N: the absolute offset where tensor data starts.
func (f *File) HeaderSize() int64 { return f.headerSize }

// check reports whether t is a tensor of this file, as returned by Tensors
// or Lookup, so that a hand-made TensorInfo cannot read outside its data.
func (f *File) check(t TensorInfo) error {
	if f.closed.Load() {
		return ErrClosed
	}
	i, ok := f.index[t.Name]
	if !ok || f.tensors[i].Offset != t.Offset || f.tensors[i].Size != t.Size {
		return errAt(ErrUnknownTensor, f.name, t.Name, t.Offset, "not a tensor of this file")
	}
	return nil
}

// Section returns a reader over t's data. For a TensorInfo that is not from
// this file, every read fails with ErrUnknownTensor.
func (f *File) Section(t TensorInfo) *io.SectionReader {
	if err := f.check(t); err != nil {
		return io.NewSectionReader(errReaderAt{err}, 0, max(t.Size, 0))
	}
	return io.NewSectionReader(f.r, t.Offset, t.Size)
}

// ReadTensor copies t's data into dst, whose length must be t.Size.
func (f *File) ReadTensor(t TensorInfo, dst []byte) error {
	if err := f.check(t); err != nil {
		return err
	}
	if int64(len(dst)) != t.Size {
		return errAt(ErrDataLength, f.name, t.Name, noOffset, "buffer is %d bytes, tensor is %d", len(dst), t.Size)
	}
	if f.data != nil {
		copy(dst, f.data[t.Offset:t.Offset+t.Size])
		return nil
	}
	if _, err := f.r.ReadAt(dst, t.Offset); err != nil && !(err == io.EOF && len(dst) == 0) {
		e := ioErr(err, f.name, t.Offset)
		if fe, ok := e.(*FormatError); ok {
			fe.Tensor = t.Name
		}
		return e
	}
	return nil
}

// Bytes returns t's data. For a memory-mapped File it is a zero-copy slice of
// the read-only mapping: writing to it crashes the program, and it is valid
// only until Close. Otherwise it is a fresh copy.
func (f *File) Bytes(t TensorInfo) ([]byte, error) {
	if err := f.check(t); err != nil {
		return nil, err
	}
	if f.data != nil {
		return f.data[t.Offset : t.Offset+t.Size : t.Offset+t.Size], nil
	}
	buf := make([]byte, t.Size)
	if err := f.ReadTensor(t, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Mapped reports whether the file is memory-mapped (Bytes is zero-copy).
func (f *File) Mapped() bool { return f.data != nil }

// Close releases the mapping or the file. Slices from Bytes must not be used
// afterwards. Closing twice returns ErrClosed.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return ErrClosed
	}
	if f.release != nil {
		return f.release()
	}
	return nil
}

// mappedReader reads from the mapping, and fails instead of faulting once
// the File is closed.
type mappedReader struct{ f *File }

func (m mappedReader) ReadAt(p []byte, off int64) (int, error) {
	if m.f.closed.Load() {
		return 0, ErrClosed
	}
	if off < 0 || off > int64(len(m.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }

// pageSize is the granularity of Release; 4 KiB is the smallest page size of
// the platforms we run on, and advising a smaller unit than the real page is
// harmless (the kernel rounds inward).
const pageSize = 4096

// Release tells the operating system that t's bytes will not be read again
// soon. For a memory-mapped File the whole pages inside t's range leave the
// process's resident set, so streaming a checkpoint tensor by tensor keeps
// RSS bounded by the largest tensor rather than growing to the file size.
// Pages shared with a neighbouring tensor are kept. A no-op otherwise.
func (f *File) Release(t TensorInfo) {
	if f.data == nil || f.check(t) != nil || f.closed.Load() {
		return
	}
	lo := (t.Offset + pageSize - 1) / pageSize * pageSize
	hi := (t.Offset + t.Size) / pageSize * pageSize
	if hi > lo {
		dontNeed(f.data[lo:hi])
	}
}
