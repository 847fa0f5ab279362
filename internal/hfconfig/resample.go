package hfconfig

import "fmt"

// Resample is a resampling filter by its Pillow code, the number that
// preprocessor_config.json stores under "resample".
type Resample int

// Pillow's filter codes (PIL.Image.Resampling).
const (
	ResampleNearest  Resample = 0
	ResampleLanczos  Resample = 1
	ResampleBilinear Resample = 2
	ResampleBicubic  Resample = 3
	ResampleBox      Resample = 4
	ResampleHamming  Resample = 5
)

func (r Resample) String() string {
	switch r {
	case ResampleNearest:
		return "nearest"
	case ResampleLanczos:
		return "lanczos"
	case ResampleBilinear:
		return "bilinear"
	case ResampleBicubic:
		return "bicubic"
	case ResampleBox:
		return "box"
	case ResampleHamming:
		return "hamming"
	}
	return fmt.Sprintf("resample(%d)", int(r))
}

// MarshalText writes the filter's name, so JSON reports read "bicubic".
func (r Resample) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Valid reports whether r is one of Pillow's filter codes.
func (r Resample) Valid() bool { return r >= ResampleNearest && r <= ResampleHamming }
