package convert

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The family is the unit of model knowledge. Everything quantpack knows
// about one model family (its architectures, how to read and bound its
// config.json, the tensors its checkpoints hold, its presets, its ONNX graph)
// is in two files, plus their test:
//
//	arch_<family>.go        the family entry (a *family value), its config reader,
//	                        its tensor list and its presets
//	arch_<family>_graph.go  its GraphBuilder (the ONNX graph)
//	arch_<family>_test.go   what is specific to it (config variants, its helpers)
//
// and one line in the families table below. What the ViT-style encoders
// share lives in shared files: encoder.go (vitParams, the encoder's tensor
// list), graph_encoder.go (patch embedding, attention, MLP, the ViT layer
// stack) and graph_posembed.go (position-embedding resizing); what every
// family uses lives in specs.go (config bounds, specList).
//
// To add a family:
//
//  1. Write arch_<family>.go: a `var <family>Family = &family{...}` with the
//     architecture class names (config.architectures[0]), their tensor-name
//     prefix and head; a read<Family>Params that bounds-checks every
//     config key it uses (c.Invalid for out-of-range values,
//     ErrUnsupportedSetting for valid settings not implemented); a tensor
//     list in save_pretrained's names; the family's facts the pipeline asks
//     about (QuantizeConvs, Patches); presets (optional, for synth).
//  2. Write arch_<family>_graph.go: a GraphBuilder that reads the same
//     params and computes what transformers' modeling code computes, naming
//     weights exactly as the tensor list does. (Without it the family
//     converts but does not export.)
//  3. Add the family to the families table below.
//  4. Write arch_<family>_test.go: config variants (runConfigVariants)
//     against the float64 forward pass, which the family extends in
//     forward64_test.go (refNet.forward, an implementation of the modeling
//     code independent of the graph builder), and add a reference checkpoint
//     written by transformers to ../shared/fixtures/reference and to
//     referenceModels (TestTensorListsMatchFixtures,
//     TestExportMatchesTransformers). TestRegistry checks the entry.
//  5. Only if its image processor is a class quantpack does not reproduce
//     yet, or its model_type needs defaults for checkpoints without
//     preprocessor_config.json: internal/hfconfig/preprocess.go
//     (processorClasses, modelTypeClass, DefaultPreprocessorConfig). That
//     lives in a leaf package because verify, which must not import
//     convert, reads it too.
//
// Nothing else in convert, export, synth or study names a family: they read
// these entries.

// families is every model family quantpack knows, in the order of
// docs/export.md. LookupArch, Supported, Exportable and Presets read it.
var families = []*family{
	vitFamily,
	deitFamily,
	dinov2Family,
	beitFamily,
	mobilevitFamily,
}

// family is one model family: what its arch_<family>.go file declares.
type family struct {
	// Name is the family's short name (vit, deit, dinov2, beit, mobilevit),
	// Arch.Family of its architectures.
	Name string
	// Archs are its architectures. Family is filled in by the registry.
	Archs []Arch
	// Tensors lists the tensors a checkpoint of architecture a with config c
	// holds, as transformers' save_pretrained writes them (pooler: ViTModel's
	// optional pooler). The graph builder reads tensors by these names,
	// synth writes them, convert and export check sources against them.
	Tensors func(a *Arch, c *Config, pooler bool) (specList, error)
	// Graph builds the ONNX graph; nil for a family that only converts
	// (export then fails with ErrNoGraph).
	Graph GraphBuilder
	// QuantizeConvs makes int8/int4/nf4 artifacts store convolution weights
	// as per-output-channel int8 (MobileViT, where convolutions hold most of
	// the weights). ViT-style patch embeddings stay float.
	QuantizeConvs bool
	// Patches marks a family whose input is cut into patch_size×patch_size
	// patches, so export's image size must be a multiple of patch_size.
	Patches bool
	// Presets are real models' configs for synth.
	Presets []*Preset
}

// Arch is what quantpack knows about one Hugging Face architecture
// (config.architectures[0]). Each family declares its architectures in its
// own arch_<family>.go file.
type Arch struct {
	// Name is the class name transformers writes into config.architectures.
	Name string
	// Family groups architectures that share a graph builder (vit, deit,
	// dinov2, beit, mobilevit); set from the family entry.
	Family string
	// Prefix is the backbone's tensor-name prefix ("vit.", "" for base
	// models such as ViTModel).
	Prefix string
	// Head lists tensor-name prefixes of the task head; by default they stay
	// float, as bitsandbytes leaves the classifier unquantized.
	Head []string

	family *family
}

// registry maps architecture names to their entries, built from families.
var registry = buildRegistry(families)

// buildRegistry indexes the families' architectures by name. A duplicate
// name or an incomplete entry is a programming error (TestRegistry).
func buildRegistry(fs []*family) map[string]*Arch {
	m := map[string]*Arch{}
	for _, f := range fs {
		if f.Tensors == nil || len(f.Archs) == 0 {
			panic("convert: family " + f.Name + " lacks architectures or a tensor list")
		}
		for _, a := range f.Archs {
			if _, dup := m[a.Name]; dup {
				panic("convert: architecture registered twice: " + a.Name)
			}
			a.Family, a.family = f.Name, f
			m[a.Name] = &a
		}
	}
	return m
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

// Tensors lists the tensors a checkpoint of a with config c holds (see
// family.Tensors).
func (a *Arch) Tensors(c *Config, pooler bool) (specList, error) {
	return a.family.Tensors(a, c, pooler)
}

// graph is a's graph builder.
func (a *Arch) graph() GraphBuilder { return a.family.Graph }

// quantizeConvs reports whether a's int8/int4/nf4 artifacts quantize
// convolutions (family.QuantizeConvs); false for a nil a.
func (a *Arch) quantizeConvs() bool { return a != nil && a.family.QuantizeConvs }

// isHead reports whether a tensor belongs to the architecture's task head.
func (a *Arch) isHead(name string) bool {
	if a == nil {
		return false
	}
	return slices.ContainsFunc(a.Head, func(p string) bool { return strings.HasPrefix(name, p) })
}
