package onnx

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

const (
	// DefaultExternalThreshold is the initializer size, in bytes, from which
	// WriteFile moves data to the data file: the default of onnx's own
	// save_model (size_threshold=1024), below which a reference costs about
	// as much as the data.
	DefaultExternalThreshold = 1024
	// DefaultAlign is the default offset alignment in the data file: the
	// page size, as ExternalData.md recommends, so that ONNX Runtime can
	// mmap each initializer in place instead of copying it (it needs offsets
	// on the allocation granularity: 4 KiB on Linux; Windows would need 64
	// KiB). The cost is under 4 KiB of padding per external tensor.
	DefaultAlign = 4096
	// MaxAlign bounds WriteOptions.Align. Padding larger than 64 KiB is
	// left as a hole (seek) rather than written, so a large alignment costs
	// no disk space on file systems with sparse files.
	MaxAlign = 1 << 32
)

// WriteOptions controls WriteFile. The zero value is the default.
type WriteOptions struct {
	// ExternalThreshold: initializers (of the main graph and of subgraphs)
	// of at least this many bytes go to the data file. 0 means
	// DefaultExternalThreshold; a negative value keeps everything inline.
	// Attribute tensors (Constant values) always stay inline.
	ExternalThreshold int64
	// DataFile is the data file's name, a plain file name in the model's
	// directory. Default: the model's file name + ".data".
	DataFile string
	// Align is the offset alignment of each tensor in the data file, a
	// power of two up to MaxAlign. 0 means DefaultAlign.
	Align int64
	// Context, when set, is checked before each external tensor is written:
	// once it is cancelled WriteFile stops with its error and leaves no
	// file behind.
	Context context.Context
}

// WriteFile writes m to path, and its large initializers to a data file
// beside it (see WriteOptions). Both files are written atomically (temporary
// file, fsync, rename), the data file first and streamed one tensor at a
// time: a Source tensor is produced straight into the file, a tensor read
// from external data is copied through a small buffer, so memory does not
// grow with the model. Offsets are assigned in a fixed order (initializers
// depth-first, as they appear), so the bytes are deterministic.
//
// When no tensor goes out, no data file is written (an existing one is left
// alone). m is not modified. Tensors that ReadFile left in an external data file
// are copied; if that file is the one being replaced, m's references to it
// are stale afterwards: read the model again.
func WriteFile(path string, m *Model, opt WriteOptions) error {
	threshold, align := opt.ExternalThreshold, opt.Align
	if threshold == 0 {
		threshold = DefaultExternalThreshold
	}
	if align == 0 {
		align = DefaultAlign
	}
	if align < 1 || align > MaxAlign || align&(align-1) != 0 {
		return fmt.Errorf("%w: alignment %d is not a power of two up to %d", ErrWrite, align, int64(MaxAlign))
	}
	dataName := opt.DataFile
	if dataName == "" {
		dataName = filepath.Base(path) + ".data"
	}
	if msg := checkLocation(dataName); msg != "" || strings.ContainsAny(dataName, `/\`) || dataName == filepath.Base(path) {
		return fmt.Errorf("%w: data file %q must be a plain file name other than the model's", ErrWrite, dataName)
	}

	// Place the external tensors.
	ext := map[*Tensor]*ExternalRef{}
	var plan []*Tensor
	var end int64
	if threshold > 0 {
		err := walkInitializers(m.Graph, func(t *Tensor) error {
			if _, dup := ext[t]; dup || t.DataType == String || !t.DataType.Known() && t.hasTyped() {
				return nil // no raw form to move out
			}
			size, err := t.DataSize()
			if err != nil || size < threshold {
				return err
			}
			off := (end + align - 1) &^ (align - 1)
			if off < end || size > int64(1<<62)-off {
				return fmt.Errorf("%w: data file offsets overflow", ErrWrite)
			}
			ext[t] = &ExternalRef{Location: dataName, Offset: off, Length: size}
			plan = append(plan, t)
			end = off + size
			return nil
		})
		if err != nil {
			return err
		}
	}

	// Size the model before writing anything.
	s := encode(m, ext, true)
	if s.err != nil {
		return s.err
	}
	if s.n > MaxProtoSize {
		return &FormatError{File: path, Offset: -1, Msg: fmt.Sprintf("model is %d bytes even with external data; lower ExternalThreshold", s.n), Err: ErrTooLarge}
	}

	var data *atomicfile.File
	if len(plan) > 0 {
		var err error
		if data, err = atomicfile.Create(filepath.Join(filepath.Dir(path), dataName)); err != nil {
			return err
		}
		defer data.Abort()
		if err := writeData(opt.Context, data, plan, ext); err != nil {
			return fmt.Errorf("onnx: writing %s: %w", data.Path(), err)
		}
	}

	mf, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer mf.Abort()
	bw := newBufWriter(mf)
	err = s.writeTo(bw, m)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("onnx: writing %s: %w", path, err)
	}
	if data != nil {
		if err := data.Commit(); err != nil {
			return err
		}
	}
	return mf.Commit()
}

// holeMin is the smallest padding left as a hole instead of written zeros.
const holeMin = 64 << 10

var zeros [holeMin]byte

// writeData streams the planned tensors into f at their offsets.
func writeData(ctx context.Context, f *atomicfile.File, plan []*Tensor, ext map[*Tensor]*ExternalRef) error {
	if ctx == nil {
		ctx = context.Background()
	}
	bw := newBufWriter(f)
	var pos int64
	hole := false
	for _, t := range plan {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := ext[t]
		if pad := r.Offset - pos; pad >= holeMin {
			if err := bw.Flush(); err != nil {
				return err
			}
			if _, err := f.Seek(pad, io.SeekCurrent); err != nil {
				return err
			}
			hole = true
		} else if _, err := bw.Write(zeros[:pad]); err != nil {
			return err
		}
		if r.Length > 0 {
			hole = false
		}
		cw := &countWriter{w: bw, limit: r.Length}
		if err := copyTensor(cw, t); err != nil {
			return err
		}
		if cw.n != r.Length {
			return t.formatErr(ErrWrite, "wrote %d bytes, want %d", cw.n, r.Length)
		}
		pos = r.Offset + r.Length
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if hole { // the file ends in a seek: give it its length
		return f.Truncate(pos)
	}
	return nil
}
