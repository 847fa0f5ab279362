package safetensors

import (
	"fmt"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// Sentinels for corrupt input (fault.Invalid, exit 3). Errors returned by the
// reader wrap one of these, usually inside a *FormatError that says where.
var (
	// ErrTruncated: the file ends before the header or the data it declares.
	ErrTruncated = fault.New(fault.Invalid, "safetensors: file truncated")
	// ErrHeaderTooLarge: the header length exceeds MaxHeaderSize.
	ErrHeaderTooLarge = fault.New(fault.Invalid, "safetensors: header too large")
	// ErrHeaderJSON: the header is not valid UTF-8 JSON of the expected
	// shape (an object of objects, metadata values strings, integers where
	// integers belong, nothing after the closing brace but spaces).
	ErrHeaderJSON = fault.New(fault.Invalid, "safetensors: invalid header JSON")
	// ErrDuplicate: a JSON key appears twice (encoding/json would silently
	// keep the last one), or a tensor name is held by two shards.
	ErrDuplicate = fault.New(fault.Invalid, "safetensors: duplicate name")
	// ErrOffsets: data offsets out of range, reversed, overlapping, leaving
	// a gap, or not covering the whole data buffer.
	ErrOffsets = fault.New(fault.Invalid, "safetensors: bad data offsets")
	// ErrShapeSize: shape × dtype size differs from the byte length.
	ErrShapeSize = fault.New(fault.Invalid, "safetensors: byte length does not match shape and dtype")
	// ErrShapeOverflow: the shape's element count or byte size overflows
	// int64.
	ErrShapeOverflow = fault.New(fault.Invalid, "safetensors: shape overflows")
	// ErrUnknownDType: a dtype that the safetensors format does not define.
	// The format's dtype list is closed at any given version, so a name that
	// no version defines can only come from a corrupt or hand-made file;
	// names that newer versions define are ErrUnsupportedDType instead.
	ErrUnknownDType = fault.New(fault.Invalid, "safetensors: unknown dtype")
	// ErrMissingShard: a shard named by the index is not there.
	ErrMissingShard = fault.New(fault.Invalid, "safetensors: missing shard")
	// ErrIndex: model.safetensors.index.json is malformed or disagrees with
	// its shards (a mapped tensor absent, an unmapped tensor present, a shard
	// name that is not a plain file name).
	ErrIndex = fault.New(fault.Invalid, "safetensors: invalid index")
	// ErrNoCheckpoint: a directory holds neither model.safetensors nor
	// model.safetensors.index.json.
	ErrNoCheckpoint = fault.New(fault.Invalid, "safetensors: no safetensors checkpoint")
)

// Sentinels for valid input this package does not handle (fault.Unsupported,
// exit 4).
var (
	// ErrUnsupportedDType: a dtype that newer versions of the format define
	// but this package does not (F4, F6_*, F8_E8M0, the fnuz FP8s, C64).
	ErrUnsupportedDType = fault.New(fault.Unsupported, "safetensors: unsupported dtype")
	// ErrTooManyDims: a shape with more than MaxDims dimensions.
	ErrTooManyDims = fault.New(fault.Unsupported, "safetensors: too many dimensions")
	// ErrTooManyTensors is a header declaring more than MaxTensors tensors:
	// not corrupt per se, but more than quantpack indexes.
	ErrTooManyTensors = fault.New(fault.Unsupported, "safetensors: too many tensors")
)

// Sentinels for misuse of the API by the caller (fault.Other, exit 1): these
// are bugs in the program, not problems with the input.
var (
	// ErrBadSpec: a TensorSpec passed to Create is unusable (empty or
	// reserved or repeated name, unknown dtype, negative dimension).
	ErrBadSpec = fault.New(fault.Other, "safetensors: bad tensor spec")
	// ErrUnknownTensor: a name or TensorInfo that does not belong to this
	// file or writer.
	ErrUnknownTensor = fault.New(fault.Other, "safetensors: unknown tensor")
	// ErrDataLength: a buffer whose length is not the tensor's byte size.
	ErrDataLength = fault.New(fault.Other, "safetensors: data length does not match tensor size")
	// ErrWrittenTwice: WriteTensor called twice for one tensor.
	ErrWrittenTwice = fault.New(fault.Other, "safetensors: tensor written twice")
	// ErrIncomplete: Commit called before every tensor was written.
	ErrIncomplete = fault.New(fault.Other, "safetensors: tensors not written")
	// ErrClosed: the File was closed, or the Writer committed or aborted.
	ErrClosed = fault.New(fault.Other, "safetensors: already closed")
)

// noOffset marks a FormatError that has no byte offset.
const noOffset = -1

// FormatError says where a file is wrong: which file, which tensor (if any)
// and at which absolute byte offset (-1 if none). Unwrap returns the
// sentinel, so errors.Is(err, ErrOffsets) and fault.ClassOf work.
type FormatError struct {
	File   string
	Tensor string
	Offset int64
	Msg    string
	Err    error
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("safetensors: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Tensor != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.Tensor)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, "at byte %d: ", e.Offset)
	}
	msg := e.Msg
	if msg == "" && e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), "safetensors: ")
	}
	b.WriteString(msg)
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// errAt builds a FormatError.
func errAt(sentinel error, file, tensor string, off int64, format string, args ...any) error {
	return &FormatError{File: file, Tensor: tensor, Offset: off, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}
