package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// What every family's config reader and tensor list use: bounds on config
// values, the activation check and specList.

// limits on config values: far above any real vision model, low enough that
// products of them cannot overflow int64 or ask for absurd allocations.
const (
	maxHidden = 1 << 14
	maxLayers = 256
	maxImage  = 4096
	maxLabels = 1 << 20
)

// checkAct accepts the hidden_act values the graph builders implement
// (builder.activation) and returns ErrUnsupportedSetting for the others.
func checkAct(c *Config, act string) error {
	switch act {
	case "gelu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish", "gelu_fast":
		return nil
	}
	return fmt.Errorf("%s: %w: hidden_act %q", c.Path, ErrUnsupportedSetting, act)
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
