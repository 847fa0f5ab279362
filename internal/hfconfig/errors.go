package hfconfig

import (
	"fmt"

	"github.com/quantpack/quantpack/internal/fault"
)

// Sentinels of this package.
var (
	// ErrConfig is a config.json that is not a JSON object or holds a key
	// of the wrong type or out of range.
	ErrConfig = fault.New(fault.Invalid, "hfconfig: invalid config.json")
	// ErrBadPreprocessor is a preprocessor_config.json that is not valid
	// JSON or holds a value out of range.
	ErrBadPreprocessor = fault.New(fault.Invalid, "hfconfig: invalid preprocessor config")
	// ErrUnsupportedPreprocessor is a valid config that asks for something
	// quantpack does not reproduce (an unknown processor class, a
	// longest_edge size).
	ErrUnsupportedPreprocessor = fault.New(fault.Unsupported, "hfconfig: unsupported preprocessor")
)

// ConfigError names a config, preprocessor or labels file and the key or
// line at fault.
type ConfigError struct {
	Path string
	// Key is the JSON key, or "line N" for a text file; empty when the
	// whole file is at fault.
	Key  string
	Kind error
	Err  error
}

func (e *ConfigError) Error() string {
	s := fmt.Sprintf("%v: %s", e.Kind, e.Path)
	if e.Key != "" {
		s += ": " + e.Key
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *ConfigError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}
