package onnx

import (
	"fmt"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// Limits on what the reader accepts. Each bounds work or memory that a
// hostile file could otherwise make unbounded.
const (
	// MaxProtoSize is the largest ModelProto encoding: protobuf's 2 GiB
	// limit (a signed 32-bit length), which every ONNX implementation
	// inherits. Bigger models keep their weights in external data.
	MaxProtoSize = 1<<31 - 1
	// MaxDepth caps message nesting (model → graph → node → attribute →
	// graph → …). 100 is the C++ protobuf parser's default recursion limit,
	// so ONNX Runtime rejects anything deeper anyway; it keeps a crafted
	// file from exhausting the stack.
	MaxDepth = 100
	// MaxRank caps the number of dims of a tensor or shape. PyTorch and
	// NumPy stop at 64; more only serves to overflow element counts.
	MaxRank = 64
)

// Sentinels. Every reader error wraps one of them (errors.Is) inside a
// *FormatError that says where.
var (
	// ErrTruncated: a length, tag or value runs past the end of its message.
	ErrTruncated = fault.New(fault.Invalid, "onnx: truncated message")
	// ErrMalformed: bytes that are not a valid protobuf encoding of the
	// message (bad tag, bad wire type, repeated singular message).
	ErrMalformed = fault.New(fault.Invalid, "onnx: malformed protobuf")
	// ErrTooDeep: messages nested deeper than MaxDepth.
	ErrTooDeep = fault.New(fault.Invalid, "onnx: messages nested too deep")
	// ErrBadTensor: dims, data type and data disagree, or data is
	// stored in more than one place.
	ErrBadTensor = fault.New(fault.Invalid, "onnx: inconsistent tensor")
	// ErrBadExternal: an external data reference that is malformed, leaves
	// the model's directory, or points past the end of its file.
	ErrBadExternal = fault.New(fault.Invalid, "onnx: bad external data reference")
	// ErrTooLarge: a model file or encoding over MaxProtoSize.
	ErrTooLarge = fault.New(fault.Invalid, "onnx: model larger than protobuf's 2 GiB limit")

	// ErrNoData: a tensor has no data anywhere (or an external reference
	// that was never resolved against a directory: use ReadFile).
	ErrNoData = fault.New(fault.Invalid, "onnx: tensor has no data")
	// ErrUnsupported: valid ONNX this package cannot convert, such as the
	// bytes of a data type it does not know.
	ErrUnsupported = fault.New(fault.Unsupported, "onnx: unsupported")
	// ErrWrite: a model that cannot be written as given (a Source that
	// writes the wrong number of bytes, a model over 2 GiB inline, bad
	// options). The model is the program's own, so this is a bug, class
	// Other (exit 1), not invalid input.
	ErrWrite = fault.New(fault.Other, "onnx: cannot write model")
)

// FormatError says where in which file a model is malformed. Offset is the
// byte offset in File of the field that failed (-1 when none applies),
// Field its path such as "graph.node[3].attribute[0].t.dims".
type FormatError struct {
	File   string
	Offset int64
	Field  string
	Msg    string
	Err    error
}

func (e *FormatError) Error() string {
	s := "onnx: "
	if e.File != "" {
		s += e.File + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	s += e.Msg
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at byte %d", e.Offset)
	}
	if e.Err != nil {
		s += ": " + strings.TrimPrefix(e.Err.Error(), "onnx: ")
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }
