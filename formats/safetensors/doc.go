// Package safetensors reads and writes the safetensors tensor container, and
// nothing more: it knows bytes, dtypes and shapes, never model names.
//
// Format (https://github.com/huggingface/safetensors, README "Format"): an
// 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
//
//	{"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...,
//	 "__metadata__": {"key": "value"}}
//
// padded with spaces, then the data buffer. Offsets are relative to the first
// byte after the header; the tensors' byte ranges must be contiguous, must not
// overlap, and must cover the whole buffer, in whatever order the header lists
// them. Sharded checkpoints add model.safetensors.index.json
// ({"metadata": {...}, "weight_map": {tensor: shard file}}), a Hugging Face
// convention (transformers' modeling_utils) rather than part of the format.
//
// # Reading
//
// Open maps a file read-only and validates the whole header before it returns:
// header length against the real file size, JSON syntax with duplicate keys
// detected, known dtypes, shape products checked for overflow, byte lengths
// equal to shape×dtype, and offsets contiguous, in range and covering the data.
// Tensor bodies are never read during validation; Bytes hands out zero-copy
// slices of the mapping, Section an io.SectionReader, so memory grows with the
// tensor in hand and not with the model. NewFile runs the same validation over
// any io.ReaderAt. OpenCheckpoint adds directories and sharded checkpoints.
//
// Every header is treated as hostile: lengths are capped (MaxHeaderSize,
// MaxDims), multiplications are overflow-checked, nothing is allocated from a
// header-declared size before that size is checked against the real file, and
// every error names the file, the tensor and the byte offset. Errors wrap the
// package's sentinels (ErrTruncated, ErrOffsets, ...) whose fault class maps
// corrupt input to exit code 3 and valid-but-unsupported input to exit code 4.
//
// # Writing
//
// Create computes every offset from the tensor specs first, so tensors may be
// written in any order and from several goroutines (WriteAt), and commits the
// file atomically (temporary file, fsync, rename). Tensors are laid out sorted
// by name, the header is padded with spaces to a multiple of 8 bytes and has
// no timestamps, so identical input gives identical bytes. PlanShards,
// ShardName and WriteIndex produce the sharded layout.
//
// # Why not github.com/nlpodyssey/safetensors
//
// That package is a faithful port of the reference Rust parser and the tests
// use it as an independent cross-check, but it is not the reader here: it
// parses one in-memory buffer holding the whole file (a 2.5 GB checkpoint
// would have to be read into memory first), it has no F8_E4M3/F8_E5M2, it
// offers no streaming or ReaderAt access, and encoding/json silently keeps the
// last of two duplicate tensor names.
package safetensors
