package convert

import (
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/hfconfig"
)

// Sentinels of this package.
var (
	// ErrConfig is an invalid config.json (hfconfig.ErrConfig).
	ErrConfig = hfconfig.ErrConfig
	// ErrUnsupported is an architecture quantpack has no policy or graph
	// for (LookupArch lists the supported ones), or a directory without
	// the config.json that names it.
	ErrUnsupported = fault.New(fault.Unsupported, "convert: unsupported architecture")
	// ErrUnsupportedSetting is a known architecture with a config.json
	// setting quantpack does not implement (hidden_act, output_stride).
	ErrUnsupportedSetting = fault.New(fault.Unsupported, "convert: unsupported model setting")
	// ErrUnsupportedLayout is a stored tensor layout export cannot read
	// (a scheme where another is needed, a quant_state or map other than
	// the ones convert writes) or an output name clash.
	ErrUnsupportedLayout = fault.New(fault.Unsupported, "convert: unsupported tensor layout")
	ErrMissing           = fault.New(fault.Invalid, "convert: tensor missing from checkpoint")
	ErrTensorShape       = fault.New(fault.Invalid, "convert: tensor has an unexpected shape")
	ErrTensorDType       = fault.New(fault.Unsupported, "convert: tensor dtype not supported here")
	ErrOutputExists      = fault.New(fault.Usage, "output directory is occupied") // convert, export and synth: no command named
	// ErrHubMismatch: a checkpoint file read from the Hugging Face cache
	// does not hash to what the Hub recorded for it.
	ErrHubMismatch = fault.New(fault.Invalid, "convert: cached file differs from the Hub's record")
	// ErrQuantizedInput is a source that is already quantized (a quantpack
	// int8/int4/nf4 artifact, a bitsandbytes checkpoint): converting it
	// again would relabel the stored codes, not requantize the weights.
	ErrQuantizedInput = fault.New(fault.Unsupported, "convert: input is already quantized")
	// ErrNonFinite is a tensor with NaN or ±Inf values under
	// --fail-on-nonfinite.
	ErrNonFinite = fault.New(fault.Invalid, "convert: tensor holds NaN or Inf")
)

// Config is a Hugging Face config.json (hfconfig.Config, the reader convert
// and verify share).
type Config = hfconfig.Config

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (*Config, error) { return hfconfig.Load(dir) }

// ParseConfig parses config.json bytes; path names the file in errors.
func ParseConfig(path string, b []byte) (*Config, error) { return hfconfig.Parse(path, b) }
