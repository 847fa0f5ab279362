package onnx

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantpack/quantpack/internal/safeio"
)

// ReadFile reads a model file and resolves its external data references
// against the file's directory. Every reference is checked now (path inside
// the directory with symlinks resolved, offset+length inside its file); the
// bytes are read only when Tensor.Data or Tensor.Open asks for them.
func ReadFile(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxProtoSize {
		return nil, &FormatError{File: path, Offset: -1, Msg: fmt.Sprintf("%d bytes", st.Size()), Err: ErrTooLarge}
	}
	b, err := safeio.ReadFile(path, MaxProtoSize)
	if err != nil {
		return nil, err
	}
	m, err := unmarshal(path, b)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	sizes := map[string]int64{} // data file sizes by location
	err = walkTensors(m.Graph, func(t *Tensor) error {
		if t.External == nil {
			return nil
		}
		t.External.dir = dir
		size, ok := sizes[t.External.Location]
		if !ok {
			p, err := t.External.resolve(t.Name)
			if err != nil {
				return err
			}
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				return t.External.errorf(t.Name, "location %q is not a regular file", t.External.Location)
			}
			size = st.Size()
			sizes[t.External.Location] = size
		}
		return t.External.checkRange(t.Name, size)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// walkTensors calls fn for every tensor in g: initializers, then attribute
// tensors node by node, descending into subgraphs.
func walkTensors(g *Graph, fn func(*Tensor) error) error { return walkGraph(g, true, fn) }

// walkInitializers calls fn for the initializers of g and of its
// subgraphs, in a fixed order.
func walkInitializers(g *Graph, fn func(*Tensor) error) error { return walkGraph(g, false, fn) }

// walkGraph calls fn for g's initializers, then node by node for each
// attribute's tensors when attrs is set, descending into subgraphs.
func walkGraph(g *Graph, attrs bool, fn func(*Tensor) error) error {
	if g == nil {
		return nil
	}
	for _, t := range g.Initializers {
		if err := fn(t); err != nil {
			return err
		}
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if attrs {
				if a.T != nil {
					if err := fn(a.T); err != nil {
						return err
					}
				}
				for _, t := range a.Tensors {
					if err := fn(t); err != nil {
						return err
					}
				}
			}
			if err := walkGraph(a.G, attrs, fn); err != nil {
				return err
			}
			for _, sub := range a.Graphs {
				if err := walkGraph(sub, attrs, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *ExternalRef) errorf(tensor, format string, args ...any) error {
	return &FormatError{
		File: filepath.Join(r.dir, filepath.FromSlash(r.Location)), Offset: r.Offset,
		Field: fmt.Sprintf("tensor %q", tensor), Msg: fmt.Sprintf(format, args...), Err: ErrBadExternal,
	}
}

// resolve returns the data file's real path after checking that it stays
// inside the model's real directory.
func (r *ExternalRef) resolve(tensor string) (string, error) {
	if r.dir == "" {
		return "", &FormatError{Offset: -1, Field: fmt.Sprintf("tensor %q", tensor),
			Msg: "external data " + r.Location + " not resolved: read the model with ReadFile", Err: ErrNoData}
	}
	if msg := checkLocation(r.Location); msg != "" {
		return "", r.errorf(tensor, "%s", msg)
	}
	realDir, err := filepath.EvalSymlinks(r.dir)
	if err != nil {
		return "", r.errorf(tensor, "model directory: %v", err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(r.dir, filepath.FromSlash(r.Location)))
	if err != nil {
		return "", r.errorf(tensor, "%v", err)
	}
	rel, err := filepath.Rel(realDir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", r.errorf(tensor, "location %q resolves outside the model directory", r.Location)
	}
	return real, nil
}

func (r *ExternalRef) checkRange(tensor string, size int64) error {
	if r.Offset > size || r.Length > size-r.Offset {
		return r.errorf(tensor, "bytes [%d, %d) past the end of the %d-byte file", r.Offset, r.Offset+r.Length, size)
	}
	return nil
}

func (r *ExternalRef) open(tensor string) (io.ReadCloser, int64, error) {
	p, err := r.resolve(tensor)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, r.errorf(tensor, "%v", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = r.errorf(tensor, "location %q is not a regular file", r.Location)
	}
	if err == nil {
		err = r.checkRange(tensor, st.Size())
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return readCloser{io.NewSectionReader(f, r.Offset, r.Length), f}, r.Length, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// newBufWriter sizes the write buffer of model and data files: large
// enough that per-call overhead vanishes, small next to the tensors.
func newBufWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 1<<20) }
