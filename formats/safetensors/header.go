package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

const (
	// MaxHeaderSize caps the JSON header at 100 MB. The reference
	// implementation refuses larger headers (its MAX_HEADER_SIZE), so no
	// conforming writer produces one, and at roughly 100 bytes per tensor it
	// still allows a million tensors. It also bounds the memory an untrusted
	// header can make us spend.
	MaxHeaderSize = 100_000_000

	// MaxDims caps the rank of a tensor. NumPy before 2.0 cannot represent
	// more than 32 dimensions (NPY_MAXDIMS), so no array that went through it
	// has more, and vision checkpoints stop at 5 (a Conv3d weight). A larger
	// rank is not corrupt per se (the format sets no limit), so it is
	// reported as unsupported; refusing it keeps per-tensor work small and
	// lets consumers index shapes with small fixed arrays.
	MaxDims = 32

	// MaxTensors caps the tensors one file may declare. Parsing an entry
	// allocates about 1.7 kB whatever its size in the header (tokens, name,
	// shape, index), so MaxHeaderSize alone let a 99 MB header of 1.4 M tiny
	// entries cost inspect 1.7 GB of RSS. Vision checkpoints hold a few
	// hundred to a few thousand tensors and the largest language-model
	// shards about ten thousand; 100 000 bounds the parse at under 200 MB
	// allocated (TestTooManyTensors).
	MaxTensors = 100_000

	// readChunk is the most the ReaderAt path allocates ahead of the bytes it
	// has actually read (see readAt), so a lying size costs at most this.
	readChunk = 10 << 20

	// lengthSize is the size of the u64 header length that opens the file.
	lengthSize = 8
)

// rawEntry is one tensor as the header states it, before validation.
type rawEntry struct {
	name       string
	dtype      string
	shape      []int64
	begin, end int64
	pos        int64 // absolute offset of the entry in the header, for errors
}

// readHeader checks the header length against the real size and returns the
// header bytes (without the 8-byte length). data, when not nil, is the whole
// file in memory (mmap) and is sliced instead of read.
func readHeader(r io.ReaderAt, data []byte, size int64, file string) ([]byte, error) {
	if size < lengthSize {
		return nil, errAt(ErrTruncated, file, "", 0, "file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [lengthSize]byte
	if data != nil {
		copy(lenBuf[:], data)
	} else if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, ioErr(err, file, 0)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, errAt(ErrHeaderTooLarge, file, "", 0, "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > uint64(size-lengthSize) {
		return nil, errAt(ErrTruncated, file, "", 0, "header length %d exceeds the %d bytes that follow it", n, size-lengthSize)
	}
	if data != nil {
		return data[lengthSize : lengthSize+n], nil
	}
	return readAt(r, lengthSize, int64(n), file)
}

// readAt reads n bytes at off. n has been checked against the size the
// caller claims, but a ReaderAt may still hold fewer bytes, so large reads
// grow their buffer chunk by chunk as data actually arrives (the approach of
// Go's internal/saferio) instead of trusting n up front.
func readAt(r io.ReaderAt, off, n int64, file string) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil // a ReaderAt may report EOF for an empty read at the end
	}
	if n <= readChunk {
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, off); err != nil {
			return nil, ioErr(err, file, off)
		}
		return buf, nil
	}
	var buf []byte
	chunk := make([]byte, readChunk)
	for done := int64(0); done < n; {
		c := chunk[:min(n-done, readChunk)]
		if _, err := r.ReadAt(c, off+done); err != nil {
			return nil, ioErr(err, file, off+done)
		}
		buf = append(buf, c...)
		done += int64(len(c))
	}
	return buf, nil
}

// ioErr turns a short read into ErrTruncated and wraps other I/O errors with
// the file name.
func ioErr(err error, file string, off int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errAt(ErrTruncated, file, "", off, "file ends early")
	}
	return &FormatError{File: file, Offset: off, Msg: err.Error(), Err: err}
}

// headerParser walks the header JSON token by token, so that duplicate keys
// are seen (encoding/json's Unmarshal keeps the last silently) and every
// error carries the byte offset where it was found.
type headerParser struct {
	dec  *json.Decoder
	file string
	base int64 // absolute file offset of the header's first byte
}

// parseHeader parses the header JSON into raw entries and metadata. It checks
// syntax and types only; validate checks the values.
func parseHeader(hdr []byte, file string) ([]rawEntry, map[string]string, error) {
	p := &headerParser{file: file, base: lengthSize}
	if !utf8.Valid(hdr) {
		// encoding/json would replace bad bytes with U+FFFD, which could
		// turn two distinct names into one.
		i := 0
		for i < len(hdr) {
			r, n := utf8.DecodeRune(hdr[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, nil, errAt(ErrHeaderJSON, file, "", p.base+int64(i), "header is not valid UTF-8")
	}
	p.dec = json.NewDecoder(bytes.NewReader(hdr))
	p.dec.UseNumber()
	if err := p.delim('{', "", "header is not a JSON object"); err != nil {
		return nil, nil, err
	}
	var entries []rawEntry
	var meta map[string]string
	seen := make(map[string]bool)
	for p.dec.More() {
		key, err := p.key("")
		if err != nil {
			return nil, nil, err
		}
		pos := p.offset()
		if seen[key] {
			return nil, nil, errAt(ErrDuplicate, file, key, pos, "name appears twice in the header")
		}
		seen[key] = true
		if key == "__metadata__" {
			if meta, err = p.metadata(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if len(entries) == MaxTensors {
			return nil, nil, errAt(ErrTooManyTensors, file, key, pos, "header declares more than %d tensors (MaxTensors)", MaxTensors)
		}
		e, err := p.tensor(key)
		if err != nil {
			return nil, nil, err
		}
		e.pos = pos
		entries = append(entries, e)
	}
	if err := p.delim('}', "", "header object not closed"); err != nil {
		return nil, nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, nil, p.fail("", "data after the header's closing brace")
	}
	return entries, meta, nil
}

func (p *headerParser) offset() int64 { return p.base + p.dec.InputOffset() }

func (p *headerParser) fail(tensor, format string, args ...any) error {
	return errAt(ErrHeaderJSON, p.file, tensor, p.offset(), format, args...)
}

func (p *headerParser) token(tensor string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err == io.EOF {
		return nil, p.fail(tensor, "header ends inside a JSON value")
	}
	if err != nil {
		return nil, p.fail(tensor, "%v", err)
	}
	return tok, nil
}

func (p *headerParser) delim(want json.Delim, tensor, msg string) error {
	tok, err := p.token(tensor)
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return p.fail(tensor, "%s", msg)
	}
	return nil
}

// key reads an object key (the decoder guarantees a string there).
func (p *headerParser) key(tensor string) (string, error) {
	tok, err := p.token(tensor)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", p.fail(tensor, "expected an object key")
	}
	return s, nil
}

// metadata reads the "__metadata__" value: an object of strings, or null.
func (p *headerParser) metadata() (map[string]string, error) {
	tok, err := p.token("")
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, p.fail("", "__metadata__ is not an object")
	}
	m := make(map[string]string)
	for p.dec.More() {
		k, err := p.key("")
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errAt(ErrDuplicate, p.file, "", p.offset(), "__metadata__ key %q appears twice", k)
		}
		v, err := p.token("")
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, p.fail("", "__metadata__ value of %q is not a string", k)
		}
		m[k] = s
	}
	if err := p.delim('}', "", "__metadata__ not closed"); err != nil {
		return nil, err
	}
	return m, nil
}

// tensor reads one tensor entry. Unknown fields are skipped, as the
// reference implementation does; duplicate fields are errors.
func (p *headerParser) tensor(name string) (rawEntry, error) {
	e := rawEntry{name: name}
	if err := p.delim('{', name, "tensor entry is not an object"); err != nil {
		return e, err
	}
	seen := make(map[string]bool, 3)
	for p.dec.More() {
		k, err := p.key(name)
		if err != nil {
			return e, err
		}
		if seen[k] {
			return e, errAt(ErrDuplicate, p.file, name, p.offset(), "field %q appears twice", k)
		}
		seen[k] = true
		switch k {
		case "dtype":
			tok, err := p.token(name)
			if err != nil {
				return e, err
			}
			s, ok := tok.(string)
			if !ok {
				return e, p.fail(name, "dtype is not a string")
			}
			e.dtype = s
		case "shape":
			e.shape, err = p.ints(name, "shape", ErrShapeOverflow, -1)
			if err != nil {
				return e, err
			}
			if e.shape == nil {
				e.shape = []int64{}
			}
		case "data_offsets":
			offs, err := p.ints(name, "data_offsets", ErrOffsets, 2)
			if err != nil {
				return e, err
			}
			e.begin, e.end = offs[0], offs[1]
		default:
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return e, p.fail(name, "%v", err)
			}
		}
	}
	if err := p.delim('}', name, "tensor entry not closed"); err != nil {
		return e, err
	}
	for _, f := range [...]string{"dtype", "shape", "data_offsets"} {
		if !seen[f] {
			return e, p.fail(name, "tensor entry has no %q", f)
		}
	}
	return e, nil
}

// ints reads an array of non-negative integers; want >= 0 fixes its length.
// A value beyond int64 wraps rangeErr (no file or shape can use it).
func (p *headerParser) ints(tensor, field string, rangeErr error, want int) ([]int64, error) {
	if err := p.delim('[', tensor, field+" is not an array"); err != nil {
		return nil, err
	}
	var out []int64
	for p.dec.More() {
		if want >= 0 && len(out) == want {
			return nil, p.fail(tensor, "%s has more than %d values", field, want)
		}
		tok, err := p.token(tensor)
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, p.fail(tensor, "%s holds a non-number", field)
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) && num[0] != '-' {
				return nil, errAt(rangeErr, p.file, tensor, p.offset(), "%s value %s is beyond 2^63-1", field, num)
			}
			return nil, p.fail(tensor, "%s value %s is not an integer", field, num)
		}
		if v < 0 {
			return nil, p.fail(tensor, "%s value %d is negative", field, v)
		}
		out = append(out, v)
	}
	if err := p.delim(']', tensor, field+" not closed"); err != nil {
		return nil, err
	}
	if want >= 0 && len(out) != want {
		return nil, p.fail(tensor, "%s has %d values, want %d", field, len(out), want)
	}
	return out, nil
}

// byteSize returns the number of elements of shape and its size in bytes
// for an element of elem bytes, with every multiplication overflow-checked;
// ok is false on overflow or a negative dimension.
func byteSize(shape []int64, elem int) (n, size int64, ok bool) {
	count := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, 0, false
		}
		hi, lo := bits.Mul64(count, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, 0, false
		}
		count = lo
	}
	hi, lo := bits.Mul64(count, uint64(elem))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, 0, false
	}
	return int64(count), int64(lo), true
}
