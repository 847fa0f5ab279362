package convert

import (
	"fmt"
	"slices"
	"sort"

	"github.com/quantpack/quantpack/internal/hfconfig"
)

// Preset is a real model's configuration, for `quantpack synth`: the seed
// study's 16 models with random weights, for benchmarks without downloads.
// Each family lists its presets in its arch_<family>.go; this file holds
// the index and the config and processor builders they share.
type Preset struct {
	Name   string // preset name, the Hugging Face repo name without owner
	Repo   string // Hugging Face repo the config comes from
	Arch   string // architectures[0]
	Params string // parameter count as the seed study states it
	Pooler bool   // ViTModel: checkpoint has pooler.dense
	Config map[string]any
	Pre    map[string]any // preprocessor_config.json
}

// presets indexes the families' presets by name.
var presets = buildPresets(families)

// buildPresets indexes presets by name; a duplicate name, or a preset whose
// architecture is not its family's, is a programming error (TestRegistry).
func buildPresets(fs []*family) map[string]*Preset {
	m := map[string]*Preset{}
	for _, f := range fs {
		for _, p := range f.Presets {
			if _, dup := m[p.Name]; dup {
				panic("convert: preset registered twice: " + p.Name)
			}
			if !slices.ContainsFunc(f.Archs, func(a Arch) bool { return a.Name == p.Arch }) {
				panic("convert: preset " + p.Name + " has architecture " + p.Arch + ", not one of family " + f.Name)
			}
			m[p.Name] = p
		}
	}
	return m
}

// Presets returns every preset sorted by name.
func Presets() []*Preset {
	out := make([]*Preset, 0, len(presets))
	for _, p := range presets {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupPreset finds a preset by name.
func LookupPreset(name string) (*Preset, error) {
	if p, ok := presets[name]; ok {
		return p, nil
	}
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	return nil, usage(fmt.Errorf("unknown preset %q; `quantpack synth --list` shows them: %v", name, names))
}

// Image processor settings of the model cards (transformers' constants, as
// hfconfig keeps them).
var (
	imagenetMean = hfconfig.ImageNetDefaultMean[:]
	imagenetStd  = hfconfig.ImageNetDefaultStd[:]
	halfMean     = hfconfig.ImageNetStandardMean[:]
)

// cropProcessor is an image processor of class kind that resizes (to
// resize×resize, or the shortest edge to resize) and center-crops crop×crop.
func cropProcessor(kind string, resize, crop int, shortest bool, mean, std []float64) map[string]any {
	size := map[string]int{"height": resize, "width": resize}
	if shortest {
		size = map[string]int{"shortest_edge": resize}
	}
	return map[string]any{"image_processor_type": kind, "do_resize": true, "size": size, "resample": 3,
		"do_center_crop": true, "crop_size": map[string]int{"height": crop, "width": crop}, "do_rescale": true,
		"rescale_factor": 1.0 / 255, "do_normalize": true, "image_mean": mean, "image_std": std}
}

// labels is id2label for n classes LABEL_0..LABEL_n-1.
func labels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprint(i)] = fmt.Sprintf("LABEL_%d", i)
	}
	return m
}
