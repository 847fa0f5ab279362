package verify

import (
	"fmt"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/hfconfig"
)

// Sentinels of this package's pure-Go half. Typed errors below wrap them so
// that errors.Is and fault.ClassOf see the class, and carry the place.
var (
	// ErrCorruptImage is an image file that its decoder rejects: truncated,
	// malformed, or a decoder panic turned into an error.
	ErrCorruptImage = fault.New(fault.Invalid, "verify: corrupt image")
	// ErrUnsupportedImage is a file in no format this build decodes.
	ErrUnsupportedImage = fault.New(fault.Unsupported, "verify: unsupported image format")
	// ErrImageTooLarge is an image whose header declares more than
	// MaxImagePixels pixels or a file over maxImageFileBytes; it is refused
	// before anything that size is allocated.
	ErrImageTooLarge = fault.New(fault.Invalid, "verify: image too large")
	// ErrBadPreprocessor is a preprocessor_config.json that is not valid
	// JSON or holds a value out of range.
	ErrBadPreprocessor = hfconfig.ErrBadPreprocessor
	// ErrUnsupportedPreprocessor is a valid config that asks for something
	// quantpack does not reproduce (an unknown processor class, a
	// longest_edge size).
	ErrUnsupportedPreprocessor = hfconfig.ErrUnsupportedPreprocessor
	// ErrBadDataset is an image folder or labels file that cannot be used:
	// no class folders, a folder name that matches no label or several.
	ErrBadDataset = fault.New(fault.Invalid, "verify: invalid dataset")
	// ErrShape is a caller's buffer or output whose length does not match
	// the shape it is used with: a bug in the program, not the user's
	// mistake, so class Other (exit 1).
	ErrShape = fault.New(fault.Other, "verify: length does not match shape")
	// ErrNoImages is a dataset in which every image failed to decode.
	ErrNoImages = fault.New(fault.Invalid, "verify: no image could be decoded")
)

// ImageError names an image that failed to decode: the file, the format
// that the header announced (empty when unknown), how far the decoder read,
// and the decoder's own error.
type ImageError struct {
	Path   string
	Format string
	// Offset is how many bytes the decoder had consumed when it failed
	// (decoders read ahead in blocks, so the fault lies at or before it);
	// -1 when the error came before decoding started.
	Offset int64
	// Size is the file's length in bytes.
	Size int64
	// Kind is one of ErrCorruptImage, ErrUnsupportedImage, ErrImageTooLarge.
	Kind error
	Err  error
}

func (e *ImageError) Error() string {
	s := fmt.Sprintf("%v: %s", e.Kind, e.Path)
	if e.Format != "" {
		s += " (" + e.Format + ")"
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at or before byte %d of %d", e.Offset, e.Size)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the decoder's error, so errors.Is matches
// either.
func (e *ImageError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ConfigError names a preprocessor or labels file and the key or line at
// fault (hfconfig.ConfigError).
type ConfigError = hfconfig.ConfigError
