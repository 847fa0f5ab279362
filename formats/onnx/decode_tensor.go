package onnx

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

func (d *decoder) tensorField(f field, name string, index int) (*Tensor, error) {
	t := &Tensor{}
	err := d.sub(f, name, index, func(start, end int) error {
		var location int64
		var entries []*StringString
		err := d.fields(start, end, func(f field) error {
			var err error
			switch {
			case f.scalarOrPacked(fTensorDims, varintT):
				t.Dims, err = appendScalars(d, &t.extra, kindTensor, f, t.Dims, "dims")
				if err == nil && len(t.Dims) > MaxRank {
					err = d.errorf(f.at, "dims", ErrBadTensor, "more than %d dims", MaxRank)
				}
			case f.is(fTensorDataType, varintT):
				t.DataType = DataType(int32(d.uvarint(f)))
				t.setZero(f.num, t.DataType == 0)
			case f.scalarOrPacked(fTensorFloatData, fixed32T):
				t.FloatData, err = appendScalars(d, &t.extra, kindTensor, f, t.FloatData, "float_data")
			case f.scalarOrPacked(fTensorInt32Data, varintT):
				t.Int32Data, err = appendScalars(d, &t.extra, kindTensor, f, t.Int32Data, "int32_data")
			case f.is(fTensorStringData, bytesT):
				t.StringData = append(t.StringData, d.bytes(f))
			case f.scalarOrPacked(fTensorInt64Data, varintT):
				t.Int64Data, err = appendScalars(d, &t.extra, kindTensor, f, t.Int64Data, "int64_data")
			case f.is(fTensorName, bytesT):
				d.setString(&t.extra, f, &t.Name)
			case f.is(fTensorRawData, bytesT):
				t.Raw = d.bytes(f)
			case f.scalarOrPacked(fTensorDoubleData, fixed64T):
				t.DoubleData, err = appendScalars(d, &t.extra, kindTensor, f, t.DoubleData, "double_data")
			case f.scalarOrPacked(fTensorUint64Data, varintT):
				t.Uint64Data, err = appendScalars(d, &t.extra, kindTensor, f, t.Uint64Data, "uint64_data")
			case f.is(fTensorDocString, bytesT):
				d.setString(&t.extra, f, &t.DocString)
			case f.is(fTensorExternalData, bytesT):
				var e *StringString
				if e, err = d.entry(f, "external_data", len(entries)); err == nil {
					entries = append(entries, e)
				}
			case f.is(fTensorDataLocation, varintT):
				location = int64(int32(d.uvarint(f)))
				t.setZero(f.num, location == 0)
			default:
				t.addUnknown(d.raw(f))
			}
			return err
		})
		if err != nil {
			return err
		}
		switch {
		case location == dataLocationExternal:
			ref, msg := parseExternal(t, entries)
			if msg != "" {
				return d.errorf(f.at, "external_data", ErrBadExternal, "tensor %q: %s", t.Name, msg)
			}
			if t.Raw != nil || t.hasTyped() {
				return d.errorf(f.at, "data_location", ErrBadTensor, "tensor %q: both inline and external data", t.Name)
			}
			t.External = ref
		case location != 0:
			return d.errorf(f.at, "data_location", ErrBadTensor, "tensor %q: data_location %d", t.Name, location)
		case len(entries) > 0:
			return d.errorf(f.at, "external_data", ErrBadExternal, "tensor %q: external_data without data_location EXTERNAL", t.Name)
		}
		if ce := t.check(); ce != nil {
			return d.errorf(f.at, "", ce.err, "tensor %q: %s", t.Name, ce.msg)
		}
		return nil
	})
	return t, err
}

// parseExternal reads a tensor's external_data entries (ExternalData.md):
// "location" is required, "offset" and "length" are optional decimal
// integers, other keys ("checksum", …) are kept but not interpreted. A
// missing length means the tensor's own byte size.
func parseExternal(t *Tensor, entries []*StringString) (*ExternalRef, string) {
	ref := &ExternalRef{Length: -1, entries: entries}
	var seen [3]bool
	for _, e := range entries {
		var i int
		switch e.Key {
		case "location":
			i = 0
			if msg := checkLocation(e.Value); msg != "" {
				return nil, msg
			}
			ref.Location = e.Value
		case "offset", "length":
			i = 1
			if e.Key == "length" {
				i = 2
			}
			v, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil || v < 0 {
				return nil, "bad " + e.Key + " " + strconv.Quote(e.Value)
			}
			if i == 1 {
				ref.Offset = v
			} else {
				ref.Length = v
			}
		default:
			continue
		}
		if seen[i] {
			return nil, "key " + strconv.Quote(e.Key) + " appears twice"
		}
		seen[i] = true
	}
	if !seen[0] {
		return nil, "no location"
	}
	if ref.Length < 0 {
		n, err := t.NumElements()
		want, ok := t.DataType.ByteLen(n)
		if err != nil || !ok {
			return nil, "no length, and data type " + t.DataType.String() + " has no fixed size"
		}
		ref.Length = want
	}
	if ref.Offset > math.MaxInt64-ref.Length {
		return nil, "offset+length overflows"
	}
	ref.orig = [3]any{ref.Location, ref.Offset, ref.Length}
	return ref, ""
}

// checkLocation enforces that an external data path stays under the model's
// directory by its spelling alone: relative, no "..", no drive or NUL.
// Symlinks are checked when the file is opened.
func checkLocation(loc string) string {
	switch {
	case loc == "":
		return "empty location"
	case strings.ContainsRune(loc, 0):
		return "location contains NUL"
	case strings.HasPrefix(loc, "/"), strings.HasPrefix(loc, `\`), filepath.IsAbs(loc),
		len(loc) >= 2 && loc[1] == ':':
		return "absolute location " + strconv.Quote(loc)
	}
	for _, part := range strings.FieldsFunc(loc, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "location " + strconv.Quote(loc) + " leaves the model directory"
		}
	}
	return ""
}
