package convert

import (
	"fmt"
	"sort"
	"strings"
)

// Arch is what quantpack knows about one Hugging Face architecture
// (config.architectures[0]). Each family registers its architectures from
// its own arch_<family>.go file.
type Arch struct {
	// Name is the class name transformers writes into config.architectures.
	Name string
	// Family groups architectures that share a graph builder (vit, deit,
	// dinov2, beit, mobilevit).
	Family string
	// Prefix is the backbone's tensor-name prefix ("vit.", "" for base
	// models such as ViTModel).
	Prefix string
	// Head lists tensor-name prefixes of the task head; by default they stay
	// float, as bitsandbytes leaves the classifier unquantized.
	Head []string
	// QuantizeConvs makes int8/int4/nf4 artifacts store convolution weights
	// as per-output-channel int8 (MobileViT, where convolutions hold most of
	// the weights). ViT-style patch embeddings stay float.
	QuantizeConvs bool
	// Tensors lists the tensors a checkpoint of this architecture holds, as
	// transformers' save_pretrained writes them (pooler: ViTModel's optional
	// pooler). Nil where quantpack has no list (then synth cannot make it).
	Tensors func(a *Arch, c *Config, pooler bool) (specList, error)
	// Graph builds the ONNX graph; nil for architectures that only convert.
	Graph GraphBuilder
}

var registry = map[string]*Arch{}

// registerArch adds an architecture; duplicate names are a programming error
// caught by TestRegistry.
func registerArch(a *Arch) {
	if _, dup := registry[a.Name]; dup {
		panic("convert: architecture registered twice: " + a.Name)
	}
	registry[a.Name] = a
}

// Supported lists the registered architecture names, sorted.
func Supported() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LookupArch returns the registered architecture or an ErrUnsupported error
// that lists the supported ones.
func LookupArch(name string) (*Arch, error) {
	if a, ok := registry[name]; ok {
		return a, nil
	}
	if name == "" {
		name = "(config.json has no architectures)"
	}
	return nil, fmt.Errorf("%w %q; supported: %s", ErrUnsupported, name, strings.Join(Supported(), ", "))
}

// isHead reports whether a tensor belongs to the architecture's task head.
func (a *Arch) isHead(name string) bool {
	if a == nil {
		return false
	}
	for _, p := range a.Head {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
