package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/internal/fault"
)

// Sentinels of this package.
var (
	ErrConfig       = fault.New(fault.Invalid, "convert: invalid config.json")
	ErrUnsupported  = fault.New(fault.Unsupported, "convert: unsupported architecture")
	ErrMissing      = fault.New(fault.Invalid, "convert: tensor missing from checkpoint")
	ErrTensorShape  = fault.New(fault.Invalid, "convert: tensor has an unexpected shape")
	ErrTensorDType  = fault.New(fault.Unsupported, "convert: tensor dtype not supported here")
	ErrOutputExists = fault.New(fault.Usage, "output directory is occupied") // convert, export and synth: no command named
)

// maxConfigBytes caps config.json: real ones are a few kilobytes, label maps
// of 22k classes reach about 1 MB.
const maxConfigBytes = 16 << 20

// Config is a Hugging Face config.json: the raw members (kept so the artifact's
// config.json carries every key through) and typed accessors for the keys the
// architectures read.
type Config struct {
	Path string
	Raw  map[string]json.RawMessage

	firstErr error
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (*Config, error) {
	p := filepath.Join(dir, "config.json")
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxConfigBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes (limit %d)", p, ErrConfig, fi.Size(), maxConfigBytes)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ParseConfig(p, b)
}

// ParseConfig parses config.json bytes; path names the file in errors.
func ParseConfig(path string, b []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrConfig, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%s: %w: not a JSON object", path, ErrConfig)
	}
	return &Config{Path: path, Raw: raw}, nil
}

// Architecture is architectures[0], or "" when absent.
func (c *Config) Architecture() string {
	var a []string
	if err := c.get("architectures", &a); err != nil || len(a) == 0 {
		return ""
	}
	return a[0]
}

// ModelType is model_type.
func (c *Config) ModelType() string { return c.String("model_type", "") }

func (c *Config) get(key string, v any) error {
	raw, ok := c.Raw[key]
	if !ok {
		return errNoKey
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w: key %q: %v", c.Path, ErrConfig, key, err)
	}
	return nil
}

var errNoKey = fmt.Errorf("no such key")

// Has reports whether key is present and not null.
func (c *Config) Has(key string) bool {
	raw, ok := c.Raw[key]
	return ok && string(raw) != "null"
}

// Int returns an integer key or def when absent. A present key of the wrong
// type is an error recorded by Err.
func (c *Config) Int(key string, def int) int {
	var v float64
	if err := c.get(key, &v); err != nil {
		c.note(err)
		return def
	}
	if v != float64(int(v)) {
		c.note(fmt.Errorf("%s: %w: key %q: %v is not an integer", c.Path, ErrConfig, key, v))
		return def
	}
	return int(v)
}

// Float returns a number key or def.
func (c *Config) Float(key string, def float64) float64 {
	var v float64
	if err := c.get(key, &v); err != nil {
		c.note(err)
		return def
	}
	return v
}

// Bool returns a boolean key or def.
func (c *Config) Bool(key string, def bool) bool {
	var v bool
	if err := c.get(key, &v); err != nil {
		c.note(err)
		return def
	}
	return v
}

// String returns a string key or def.
func (c *Config) String(key, def string) string {
	var v string
	if err := c.get(key, &v); err != nil {
		c.note(err)
		return def
	}
	return v
}

// Ints returns an integer list key or def.
func (c *Config) Ints(key string, def []int) []int {
	var v []int
	if err := c.get(key, &v); err != nil {
		c.note(err)
		return def
	}
	return v
}

// Floats returns a number list key or def.
func (c *Config) Floats(key string, def []float64) []float64 {
	var v []float64
	if err := c.get(key, &v); err != nil {
		c.note(err)
		return def
	}
	return v
}

// ID2Label returns the id2label map as a slice indexed by class id, or nil.
func (c *Config) ID2Label() []string {
	var m map[string]string
	if err := c.get("id2label", &m); err != nil {
		return nil
	}
	out := make([]string, len(m))
	for k, v := range m {
		var i int
		if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(m) {
			return nil
		}
		out[i] = v
	}
	return out
}

// NumLabels is the number of classes: id2label's size, else num_labels
// (transformers' default 2).
func (c *Config) NumLabels() int {
	if n := len(c.ID2Label()); n > 0 {
		return n
	}
	return c.Int("num_labels", 2)
}

// invalid returns an ErrConfig error naming the file.
func (c *Config) invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", c.Path, ErrConfig, fmt.Sprintf(format, args...))
}

// Err returns the first type error met by an accessor, so builders can read
// many keys and check once.
func (c *Config) Err() error { return c.firstErr }

func (c *Config) note(err error) {
	if err != errNoKey && c.firstErr == nil {
		c.firstErr = err
	}
}

// Set replaces a key with v's JSON encoding.
func (c *Config) Set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Raw[key] = b
	return nil
}

// Marshal encodes the config with sorted keys and two-space indentation, as
// transformers writes it, plus a trailing newline.
func (c *Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c.Raw, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
