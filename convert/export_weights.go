package convert

import (
	"fmt"
	"io"
	"slices"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// weights gives graph builders the tensors of a checkpoint or of a convert
// artifact by their source names. For an artifact, a tensor's logical shape
// and scheme come from the manifest (quantpack.json "tensors"), and its
// stored form is what convert wrote; export reuses those bytes as they are.
type weights struct {
	path string
	ckpt *safetensors.Checkpoint
	recs map[string]*TensorRecord // nil for a plain checkpoint
	// from, when set, says which checkpoint holds each stored tensor: a
	// composite of several artifacts of one source (see Variants), one
	// scheme per tensor. Names absent from it are missing.
	from map[string]*safetensors.Checkpoint
	// trace, when set, sees every tensor name the graph asks about, in the
	// order the builder reaches it (network order).
	trace func(name string)
}

// lookup finds a stored tensor by name.
func (w *weights) lookup(name string) (safetensors.Entry, bool) {
	if w.from != nil {
		c, ok := w.from[name]
		if !ok {
			return safetensors.Entry{}, false
		}
		return c.Lookup(name)
	}
	return w.ckpt.Lookup(name)
}

func newWeights(path string, ckpt *safetensors.Checkpoint, m *Manifest) *weights {
	w := &weights{path: path, ckpt: ckpt}
	if m != nil {
		w.recs = make(map[string]*TensorRecord, len(m.Tensors))
		for _, r := range m.Tensors {
			w.recs[r.Name] = r
		}
	}
	return w
}

// has reports whether the source holds tensor name (logically).
func (w *weights) has(name string) bool {
	if w.recs != nil {
		_, ok := w.recs[name]
		return ok
	}
	_, ok := w.lookup(name)
	return ok
}

// TensorError is a problem with one tensor of an export source: missing,
// of the wrong shape or dtype, or inconsistent with the artifact's scheme.
// It wraps the class (ErrMissing, ErrTensorShape, ErrTensorDType, ...).
type TensorError struct {
	Path   string // checkpoint or artifact directory, or safetensors file
	Tensor string
	Detail string
	Err    error
}

func (e *TensorError) Error() string {
	s := fmt.Sprintf("%s: %v: %q", e.Path, e.Err, e.Tensor)
	if e.Detail != "" {
		s += " " + e.Detail
	}
	return s
}

func (e *TensorError) Unwrap() error { return e.Err }

func tensorErr(path, tensor string, class error, format string, args ...any) error {
	return &TensorError{Path: path, Tensor: tensor, Detail: fmt.Sprintf(format, args...), Err: class}
}

// missing is the error for a tensor the architecture needs and the source
// lacks.
func (w *weights) missing(name string) error {
	return tensorErr(w.path, name, ErrMissing, "")
}

// info returns a tensor's logical shape and scheme (a float scheme named by
// dtype for plain checkpoints).
func (w *weights) info(name string) ([]int64, string, error) {
	if w.trace != nil {
		w.trace(name)
	}
	if w.recs != nil {
		r, ok := w.recs[name]
		if !ok {
			return nil, "", w.missing(name)
		}
		return r.Shape, r.Scheme, nil
	}
	e, ok := w.lookup(name)
	if !ok {
		return nil, "", w.missing(name)
	}
	switch e.DType {
	case safetensors.F32, safetensors.F64:
		return e.Shape, SchemeFP32, nil
	case safetensors.F16:
		return e.Shape, SchemeFP16, nil
	case safetensors.BF16:
		return e.Shape, SchemeBF16, nil
	}
	return e.Shape, SchemeCopy, nil
}

// stored returns the stored tensor called name (an output name of an
// artifact, or a checkpoint tensor), checking its dtype and, when shape is not
// nil, its shape.
func (w *weights) stored(name string, dts []safetensors.DType, shape []int64) (safetensors.Entry, error) {
	e, ok := w.lookup(name)
	if !ok {
		return e, w.missing(name)
	}
	if len(dts) > 0 && !slices.Contains(dts, e.DType) {
		return e, tensorErr(e.File.Name(), name, ErrTensorDType, "is %s, want one of %v", e.DType, dts)
	}
	if shape != nil && !slices.Equal(e.Shape, shape) {
		return e, tensorErr(e.File.Name(), name, ErrTensorShape, "has shape %v, want %v", e.Shape, shape)
	}
	return e, nil
}

var floatDTypes = []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64}

// floatEntry returns the stored float tensor behind a float-scheme tensor.
func (w *weights) floatEntry(name string) (safetensors.Entry, error) {
	shape, scheme, err := w.info(name)
	if err != nil {
		return safetensors.Entry{}, err
	}
	switch scheme {
	case SchemeFP32, SchemeFP16, SchemeBF16:
	default:
		return safetensors.Entry{}, tensorErr(w.path, name, ErrUnsupportedLayout, "is stored as %s where a float tensor is needed", scheme)
	}
	return w.stored(name, floatDTypes, shape)
}

// floats reads a float tensor as float32 (small tensors: tokens, tables,
// position embeddings).
func (w *weights) floats(name string) ([]float32, []int64, error) {
	e, err := w.floatEntry(name)
	if err != nil {
		return nil, nil, err
	}
	v, err := readFloat32(e)
	return v, e.Shape, err
}

// readFloat32 decodes a stored float tensor into a new slice. Its size was
// validated against the file when the checkpoint was opened.
func readFloat32(e safetensors.Entry) ([]float32, error) {
	raw, err := e.File.Bytes(e.TensorInfo)
	if err != nil {
		return nil, err
	}
	defer e.File.Release(e.TensorInfo)
	out := make([]float32, e.NumElements())
	if err := decodeFloat32(out, raw, e.DType); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", e.File.Name(), e.Name, err)
	}
	return out, nil
}

// readRaw returns a copy of a stored tensor's bytes.
func readRaw(e safetensors.Entry) ([]byte, error) {
	raw := make([]byte, e.Size)
	if err := e.File.ReadTensor(e.TensorInfo, raw); err != nil {
		return nil, err
	}
	e.File.Release(e.TensorInfo)
	return raw, nil
}

// floatSource returns an initializer that reads a float tensor when the model
// is written, optionally transposing a 2-D [rows, cols] tensor to
// [cols, rows], and encodes it as dt (FLOAT or FLOAT16). Memory stays bounded
// by one tensor however large the model.
func floatSource(name string, e safetensors.Entry, dims []int64, transpose bool, dt onnx.DataType) *onnx.Tensor {
	n := e.NumElements()
	width := int64(4)
	if dt == onnx.Float16 {
		width = 2
	}
	t := onnx.TensorSource(name, dt, dims, n*width, func(wr io.Writer) error {
		if dt == onnx.Float16 && e.DType == safetensors.F16 {
			// fp16 artifact into an fp16 graph: the bits as stored.
			raw, err := readRaw(e)
			if err != nil {
				return err
			}
			if transpose {
				raw = bytesOfU16(transpose2D(u16view(raw), int(e.Shape[0]), int(e.Shape[1])))
			}
			_, err = wr.Write(raw)
			return err
		}
		v, err := readFloat32(e)
		if err != nil {
			return err
		}
		if transpose {
			v = transpose2D(v, int(e.Shape[0]), int(e.Shape[1]))
		}
		_, err = wr.Write(encodeFloats(v, dt))
		return err
	})
	t.SourceKey = sourceKey("float", e, dt, dims, transpose)
	return t
}

// sourceKey names the bytes a Source initializer derives from stored tensor
// e (onnx.Tensor.SourceKey): the file and tensor it reads, how it
// transforms them (kind, transpose) and what it produces (dtype, dims).
// Files are named by path: the caches that use the key live no longer than
// the files they were built from.
func sourceKey(kind string, e safetensors.Entry, dt onnx.DataType, dims []int64, transpose bool) string {
	return fmt.Sprintf("%s|%s|%s|%d|%v|%t", kind, e.File.Name(), e.Name, dt, dims, transpose)
}

// rawSource returns an initializer holding a stored tensor's bytes as they
// are (quantized codes, scales), under new dims.
func rawSource(name string, e safetensors.Entry, dt onnx.DataType, dims []int64) *onnx.Tensor {
	t := onnx.TensorSource(name, dt, dims, e.Size, func(wr io.Writer) error {
		raw, err := readRaw(e)
		if err != nil {
			return err
		}
		_, err = wr.Write(raw)
		return err
	})
	t.SourceKey = sourceKey("raw", e, dt, dims, false)
	return t
}

// transposeI8Source returns the int8 [K, N] transpose of a stored [N, K]
// int8 weight.
func transposeI8Source(name string, e safetensors.Entry) *onnx.Tensor {
	nr, k := int(e.Shape[0]), int(e.Shape[1])
	dims := []int64{int64(k), int64(nr)}
	t := onnx.TensorSource(name, onnx.Int8, dims, e.Size, func(wr io.Writer) error {
		raw, err := readRaw(e)
		if err != nil {
			return err
		}
		_, err = wr.Write(transpose2D(raw, nr, k))
		return err
	})
	t.SourceKey = sourceKey("int8", e, onnx.Int8, dims, true)
	return t
}

// transpose2D returns the [cols, rows] transpose of a row-major [rows, cols]
// matrix, in blocks so both sides stay in cache.
func transpose2D[T any](v []T, rows, cols int) []T {
	out := make([]T, len(v))
	const bs = 32
	for r0 := 0; r0 < rows; r0 += bs {
		r1 := min(r0+bs, rows)
		for c0 := 0; c0 < cols; c0 += bs {
			c1 := min(c0+bs, cols)
			for r := r0; r < r1; r++ {
				row := v[r*cols : (r+1)*cols]
				for c := c0; c < c1; c++ {
					out[c*rows+r] = row[c]
				}
			}
		}
	}
	return out
}

// encodeFloats returns v's little-endian bytes as FLOAT (a view of v on
// little-endian hosts) or FLOAT16.
func encodeFloats(v []float32, dt onnx.DataType) []byte {
	if dt == onnx.Float16 {
		h := make([]uint16, len(v))
		quant.F32ToF16(h, v)
		return bytesOfU16(h)
	}
	return bytesOfF32(v)
}

// param adds the float tensor name as an initializer of the compute dtype
// with its own shape and returns its name.
func (b *builder) param(name string) string {
	return b.paramAs(name, nil, false)
}

// paramT adds a 2-D float tensor transposed (a Linear weight as MatMul's
// right operand).
func (b *builder) paramT(name string) string {
	return b.paramAs(name, nil, true)
}

// paramAs adds a float tensor with dims (nil: its own shape), transposed when
// asked. Adding the same tensor twice returns the first initializer.
func (b *builder) paramAs(name string, dims []int64, transpose bool) string {
	key := "p:" + name + fmt.Sprint(dims, transpose)
	if n, ok := b.consts[key]; ok {
		return n
	}
	if b.err != nil {
		return name
	}
	e, err := b.w.floatEntry(name)
	if err != nil {
		b.errf(err)
		return name
	}
	if dims == nil {
		dims = slices.Clone(e.Shape)
		if transpose {
			if len(dims) != 2 {
				b.errf(tensorErr(b.w.path, name, ErrTensorShape, "has shape %v, want 2-D", e.Shape))
				return name
			}
			dims[0], dims[1] = dims[1], dims[0]
		}
	}
	iname := name
	if transpose {
		iname += initTransposed
	}
	n := b.addInit(floatSource(b.unique(iname), e, dims, transpose, b.dt))
	b.consts[key] = n
	return n
}

// paramData reads a float tensor now, for values computed at export time
// (position embeddings, bias tables, tokens). want, when not nil, is the shape
// it must have.
func (b *builder) paramData(name string, want ...int64) []float32 {
	if b.err != nil {
		return nil
	}
	v, shape, err := b.w.floats(name)
	if err != nil {
		b.errf(err)
		return nil
	}
	if want != nil && !slices.Equal(shape, want) {
		b.errf(tensorErr(b.w.path, name, ErrTensorShape, "has shape %v, want %v", shape, want))
		return nil
	}
	return v
}
