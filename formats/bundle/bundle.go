package bundle

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/quantpack/quantpack/internal/fault"
)

// FormatVersion is the bundle layout this package writes; it reads every
// version up to it. It is stored as the PAX record VersionRecord on the first
// entry, so that the manifest itself can be kept byte-for-byte. Version 2
// added the provenance entry (ProvenanceName) second and the optional
// signature frame before the trailer; version 1 bundles still unpack, but
// cannot satisfy a signature policy.
const FormatVersion = 2

// VersionRecord is the PAX record key that carries FormatVersion. PAX wants
// user keys as VENDOR.keyword (POSIX.1-2008, pax "extended header").
const VersionRecord = "QUANTPACK.bundle_version"

// Limits on what a bundle may hold. Every one of them is checked before
// anything is allocated or written, because a bundle is untrusted input.
const (
	// MaxEntries caps the files in one bundle. Artifacts hold a handful of
	// files (weights, config, manifest, an ONNX graph and its data); a
	// sharded checkpoint or per-tensor external data reach a few thousand.
	// 100 000 entries of ~160 manifest bytes each fit in MaxManifestSize.
	MaxEntries = 100_000

	// MaxManifestSize caps quantpack.json, which is read into memory. A
	// manifest with MaxEntries files and the study results stays well under.
	MaxManifestSize = 16 << 20

	// MaxPathLen caps an entry name, in bytes (Linux PATH_MAX).
	MaxPathLen = 4096

	// DefaultMaxBytes is the default limit on the unpacked size (the sum of
	// the file sizes the manifest declares). The largest artifact of the
	// seed study (ViT-Huge FP32, 2.5 GB) is far below; 64 GiB leaves room
	// for much bigger models while refusing a bundle that would fill a disk.
	DefaultMaxBytes int64 = 64 << 30

	// DefaultMaxRatio caps declared unpacked bytes per bundle byte. Model
	// weights barely compress (docs/bundle.md: ratios 0.5 to 1.0, that is
	// 1× to 2× expansion), so 100× leaves room for zero-filled tensors while
	// refusing a 165 KB bundle that would unpack to 5 GiB (a ratio of
	// 32 000) before anything is written. UnpackOptions.MaxRatio raises it.
	DefaultMaxRatio = 100

	// ratioFloor: bundles declaring at most this many bytes pass the ratio
	// check whatever their size (a tiny artifact of JSON compresses well,
	// and a quarter GiB cannot fill a disk).
	ratioFloor = 256 << 20

	// maxStreamOverhead is what the tar stream may hold beyond the file
	// bytes: headers (512 B each, plus a PAX header for long names), block
	// padding and the end-of-archive trailer. Our writer needs about 1.5 KiB
	// per file; this bounds CPU spent on a hostile stream of empty headers.
	maxStreamOverhead = MaxManifestSize + 64<<20

	// maxTrailer caps the zero bytes accepted after the end-of-archive
	// marker. Go's tar writer adds none; GNU tar pads to a 10 KiB record
	// (more with -b); 1 MiB allows any sane blocking factor.
	maxTrailer = 1 << 20

	// maxWindow caps the zstd window a bundle may ask the decoder for. Our
	// writer uses packWindow (1 MiB); the zstd command line uses at most
	// 8 MiB below --ultra/--long. The window is allocated from the frame
	// header, so it must be bounded.
	maxWindow = 64 << 20
)

// Sentinels. Errors from this package wrap one of them (see EntryError and
// FileError), so callers classify with errors.Is and fault.ClassOf.
var (
	// ErrCorrupt: the zstd stream or the tar structure cannot be decoded
	// (bad frame, checksum mismatch, truncated data, bad header).
	ErrCorrupt = fault.New(fault.Invalid, "bundle: corrupt archive")
	// ErrManifest: the first entry is not a valid quantpack.json.
	ErrManifest = fault.New(fault.Invalid, "bundle: invalid manifest")
	// ErrVersion: the bundle was written in a newer format version.
	ErrVersion = fault.New(fault.Unsupported, "bundle: unsupported bundle format version")
	// ErrUnsafePath: an entry name is absolute, has "..", ".", empty or
	// backslash elements, is not UTF-8, or is too long.
	ErrUnsafePath = fault.New(fault.Invalid, "bundle: unsafe entry name")
	// ErrEntryType: an entry is not a regular file (link, device, fifo,
	// directory, sparse file, global header).
	ErrEntryType = fault.New(fault.Invalid, "bundle: entry is not a regular file")
	// ErrDuplicate: two entries (or two manifest records) share a name.
	ErrDuplicate = fault.New(fault.Invalid, "bundle: duplicate entry")
	// ErrNotInManifest: an entry is not listed in the manifest.
	ErrNotInManifest = fault.New(fault.Invalid, "bundle: entry not in manifest")
	// ErrSize: an entry's size differs from the size the manifest declares.
	ErrSize = fault.New(fault.Invalid, "bundle: entry size differs from manifest")
	// ErrHash: an entry's sha256 differs from the manifest.
	ErrHash = fault.New(fault.Invalid, "bundle: sha256 mismatch")
	// ErrMissing: a file listed in the manifest is absent.
	ErrMissing = fault.New(fault.Invalid, "bundle: file in manifest is missing")
	// ErrTooLarge: the bundle exceeds a size or count limit.
	ErrTooLarge = fault.New(fault.Invalid, "bundle: archive exceeds limit")
	// ErrMismatch: Check found differences between files and manifest.
	ErrMismatch = fault.New(fault.Invalid, "bundle: files differ from manifest")
	// ErrNotRegular: pack found a symlink, device or other non-regular file.
	ErrNotRegular = fault.New(fault.Invalid, "bundle: not a regular file")
	// ErrChanged: a file changed while pack was reading it.
	ErrChanged = fault.New(fault.Other, "bundle: file changed while packing")
	// ErrOutputNotEmpty: unpack's destination exists and is not empty.
	ErrOutputNotEmpty = fault.New(fault.Usage, "bundle: output directory exists and is not empty")
	// ErrOutputInside: pack was asked to write the bundle inside the
	// directory it is packing.
	ErrOutputInside = fault.New(fault.Usage, "bundle: output file is inside the packed directory")
	// ErrNoSpace is an output file system with less free space than the
	// bundle declares.
	ErrNoSpace = fault.New(fault.Other, "bundle: not enough free disk space")
	// ErrOutputFileExists: pack's output file exists and PackOptions.Overwrite
	// was not set.
	ErrOutputFileExists = fault.New(fault.Usage, "bundle: output file exists")
)

// EntryError locates a failure inside a bundle: which entry, where in the
// uncompressed tar stream.
type EntryError struct {
	Bundle string // bundle file name; empty when reading a stream
	Index  int    // 0-based position of the entry in the tar stream; -1 before the first
	Name   string // entry name as stored (may be hostile; printed quoted)
	Offset int64  // byte offset in the uncompressed tar stream where the problem is
	Err    error  // one of this package's sentinels
	Detail string // what exactly was wrong
}

func (e *EntryError) Error() string {
	var b strings.Builder
	if e.Bundle != "" {
		b.WriteString(e.Bundle)
		b.WriteString(": ")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, "entry %d %q ", e.Index, e.Name)
	}
	fmt.Fprintf(&b, "at byte %d of the tar stream: %v", e.Offset, e.Err)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *EntryError) Unwrap() error { return e.Err }

// FileError locates a failure in an artifact directory.
type FileError struct {
	Path   string // file path
	Err    error  // one of this package's sentinels
	Detail string
}

func (e *FileError) Error() string {
	s := e.Path + ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }

// checkName returns why name is not a safe relative file path, or "" when
// it is. Accepted: slash-separated, relative, clean (no "", ".", ".."
// elements), no backslash (a separator on Windows), no NUL or other control
// characters, valid UTF-8, at most MaxPathLen bytes.
func checkName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > MaxPathLen:
		return fmt.Sprintf("name longer than %d bytes", MaxPathLen)
	case !utf8.ValidString(name):
		return "name is not UTF-8"
	case name[0] == '/':
		return "absolute path"
	case strings.ContainsRune(name, '\\'):
		return "backslash in name"
	case len(name) >= 2 && name[1] == ':':
		return "drive letter in name"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "control character in name"
		}
	}
	for _, el := range strings.Split(name, "/") {
		switch el {
		case "":
			return "empty path element"
		case ".":
			return `"." path element`
		case "..":
			return `".." path element`
		}
	}
	return ""
}
