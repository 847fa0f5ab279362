package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// limits on config values: far above any real vision model, low enough that
// products of them cannot overflow int64 or ask for absurd allocations.
const (
	maxHidden = 1 << 14
	maxLayers = 256
	maxImage  = 4096
	maxLabels = 1 << 20
)

// vitParams are the hyperparameters the transformer families share.
type vitParams struct {
	Hidden, Layers, Heads, Inter int
	Patch, Image, Channels       int
	Labels                       int
	Eps                          float64
	Act                          string
	QKVBias                      bool
}

func (p vitParams) grid() int { return p.Image / p.Patch }

// readVitParams reads and bounds-checks the shared keys.
func readVitParams(c *Config) (vitParams, error) {
	p := vitParams{
		Hidden:   c.Int("hidden_size", 768),
		Layers:   c.Int("num_hidden_layers", 12),
		Heads:    c.Int("num_attention_heads", 12),
		Inter:    c.Int("intermediate_size", 3072),
		Patch:    c.Int("patch_size", 16),
		Image:    c.Int("image_size", 224),
		Channels: c.Int("num_channels", 3),
		Eps:      c.Float("layer_norm_eps", 1e-12),
		Act:      c.String("hidden_act", "gelu"),
		QKVBias:  c.Bool("qkv_bias", true),
	}
	p.Labels = c.NumLabels()
	if err := c.Err(); err != nil {
		return p, err
	}
	bad := c.Invalid
	switch {
	case p.Hidden <= 0 || p.Hidden > maxHidden:
		return p, bad("hidden_size %d out of range", p.Hidden)
	case p.Layers <= 0 || p.Layers > maxLayers:
		return p, bad("num_hidden_layers %d out of range", p.Layers)
	case p.Heads <= 0 || p.Hidden%p.Heads != 0:
		return p, bad("hidden_size %d not divisible by num_attention_heads %d", p.Hidden, p.Heads)
	case p.Inter <= 0 || p.Inter > 8*maxHidden:
		return p, bad("intermediate_size %d out of range", p.Inter)
	case p.Patch <= 0 || p.Patch > maxImage || p.Image <= 0 || p.Image > maxImage:
		return p, bad("patch_size %d / image_size %d out of range", p.Patch, p.Image)
	case p.Image < p.Patch:
		return p, bad("image_size %d smaller than patch_size %d", p.Image, p.Patch)
	case p.Channels <= 0 || p.Channels > 16:
		return p, bad("num_channels %d out of range", p.Channels)
	case p.Labels < 0 || p.Labels > maxLabels:
		return p, bad("num_labels %d out of range", p.Labels)
	case p.Eps <= 0 || p.Eps > 1:
		return p, bad("layer_norm_eps %g out of range", p.Eps)
	}
	switch p.Act {
	case "gelu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish", "gelu_fast":
	default:
		return p, fmt.Errorf("%s: %w: hidden_act %q", c.Path, ErrUnsupportedSetting, p.Act)
	}
	return p, nil
}

// specList builds tensor specs; a tiny helper so the family lists read like
// the modeling code.
type specList []safetensors.TensorSpec

func (l *specList) add(name string, shape ...int) {
	s := make([]int64, len(shape))
	for i, d := range shape {
		s[i] = int64(d)
	}
	*l = append(*l, safetensors.TensorSpec{Name: name, DType: safetensors.F32, Shape: s})
}

// linear adds P.weight [out,in] and, with bias, P.bias [out].
func (l *specList) linear(p string, out, in int, bias bool) {
	l.add(p+".weight", out, in)
	if bias {
		l.add(p+".bias", out)
	}
}

func (l *specList) norm(p string, n int) {
	l.add(p+".weight", n)
	l.add(p+".bias", n)
}

// noPooler adapts a tensor-list function of a family without optional pooler.
func noPooler(f func(*Arch, *Config) (specList, error)) func(*Arch, *Config, bool) (specList, error) {
	return func(a *Arch, c *Config, _ bool) (specList, error) { return f(a, c) }
}
