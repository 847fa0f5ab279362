package safetensors

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// validate checks every entry against the data buffer of dataLen bytes that
// starts at absolute offset headerSize, and returns the tensors in data
// order. Per-tensor checks come first (dtype, rank, size, range) so that the
// error names the tensor at fault; then the ranges must tile the buffer.
func validate(entries []rawEntry, headerSize, dataLen int64, file string) ([]TensorInfo, error) {
	// at is the absolute offset of a data-relative position, or of the
	// header entry when the position is too large to add safely.
	at := func(e rawEntry, rel int64) int64 {
		if rel > math.MaxInt64-headerSize {
			return e.pos
		}
		return headerSize + rel
	}
	infos := make([]TensorInfo, 0, len(entries))
	for _, e := range entries {
		dt := DType(e.dtype)
		if !dt.Valid() {
			if upstreamOnly[e.dtype] {
				return nil, errAt(ErrUnsupportedDType, file, e.name, e.pos, "dtype %q is not supported", e.dtype)
			}
			return nil, errAt(ErrUnknownDType, file, e.name, e.pos, "unknown dtype %q", e.dtype)
		}
		if len(e.shape) > MaxDims {
			return nil, errAt(ErrTooManyDims, file, e.name, e.pos, "shape has %d dimensions, more than %d", len(e.shape), MaxDims)
		}
		_, size, ok := byteSize(e.shape, dt.Size())
		if !ok {
			return nil, errAt(ErrShapeOverflow, file, e.name, e.pos, "shape %s of %s overflows int64 bytes", shapeString(e.shape), dt)
		}
		if e.begin > e.end {
			return nil, errAt(ErrOffsets, file, e.name, at(e, e.begin), "data offsets [%d, %d] are reversed", e.begin, e.end)
		}
		if e.end > dataLen {
			return nil, errAt(ErrOffsets, file, e.name, at(e, e.begin), "data offsets [%d, %d] run past the %d-byte data buffer", e.begin, e.end, dataLen)
		}
		if e.end-e.begin != size {
			return nil, errAt(ErrShapeSize, file, e.name, at(e, e.begin), "shape %s of %s is %d bytes but data offsets [%d, %d] span %d",
				shapeString(e.shape), dt, size, e.begin, e.end, e.end-e.begin)
		}
		infos = append(infos, TensorInfo{Name: e.name, DType: dt, Shape: e.shape, Offset: headerSize + e.begin, Size: size})
	}
	slices.SortFunc(infos, func(a, b TensorInfo) int {
		if a.Offset != b.Offset {
			return cmp.Compare(a.Offset, b.Offset)
		}
		if a.Size != b.Size {
			return cmp.Compare(a.Size, b.Size)
		}
		return strings.Compare(a.Name, b.Name)
	})
	pos, prev := headerSize, ""
	for _, t := range infos {
		switch {
		case t.Offset > pos:
			after := "the header"
			if prev != "" {
				after = "tensor " + strconv.Quote(prev)
			}
			return nil, errAt(ErrOffsets, file, t.Name, t.Offset, "%d unused bytes between %s and this tensor", t.Offset-pos, after)
		case t.Offset < pos:
			return nil, errAt(ErrOffsets, file, t.Name, t.Offset, "data offsets overlap %q", prev)
		}
		pos, prev = t.Offset+t.Size, t.Name
	}
	if end := headerSize + dataLen; pos != end {
		return nil, errAt(ErrOffsets, file, "", pos, "%d bytes after the last tensor are not covered by any tensor", end-pos)
	}
	return infos, nil
}

// shapeString formats a shape as the header spells it: [2,3].
func shapeString(shape []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}
