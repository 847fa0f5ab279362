// Package onnx reads and writes ONNX model files (ModelProto) without
// generated code: a hand-written subset of the messages in onnx.proto,
// encoded and decoded with google.golang.org/protobuf/encoding/protowire.
//
// Specification: https://github.com/onnx/onnx/blob/main/onnx/onnx.proto
// (field numbers), https://github.com/onnx/onnx/blob/main/docs/IR.md (IR
// semantics) and https://github.com/onnx/onnx/blob/main/docs/ExternalData.md
// (external data). Field numbers used here are listed in fields.go.
//
// What the package models: ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto with its TypeProto tensor type
// and TensorShapeProto, OperatorSetIdProto and StringStringEntryProto. Every
// other field (functions, training info, sparse initializers, non-tensor
// types, fields newer than this package) is kept as raw bytes on the message
// that carried it and written back unchanged, so a read → write round trip of
// a model made by another tool keeps everything. Known fields are written in
// field-number order with the packing onnx.proto declares (proto2), which is
// what the reference C++ implementation writes; a file written that way comes
// back byte for byte.
//
// Large models: ModelProto is limited to 2 GiB by protobuf, so WriteFile
// moves every initializer at or above WriteOptions.ExternalThreshold into a
// separate data file, streamed one tensor at a time (Tensor.Source lets a
// caller produce a tensor's bytes while it is written instead of holding them
// all). ReadFile validates external references eagerly and reads their bytes
// lazily through Tensor.Data or Tensor.Open.
//
// The reader treats its input as hostile: every length is checked against the
// bytes left, nesting depth and tensor rank are capped (see limits in
// errors.go), external paths may not leave the model's directory, and errors
// are *FormatError values that name the file, byte offset and field and wrap
// a sentinel of class fault.Invalid.
//
// Who reads: today the decoder's callers are tests. It is the oracle that
// checks what convert's export wrote (the writer's round trip, graph
// structure, external data) independently of ONNX Runtime, and it is kept
// hardened and fuzzed because it will be the reader of a quantize pass that
// rewrites an existing model.onnx (docs/design.md). Until then the product
// path is write-only.
package onnx
