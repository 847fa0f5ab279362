package convert

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// ErrUnusedTensors is a source holding tensors its config.json does not use
// (a num_hidden_layers smaller than the checkpoint's, stray extra tensors):
// exporting it would silently drop them.
var ErrUnusedTensors = fault.New(fault.Invalid, "convert: tensors not used by config.json")

// maxListed caps how many names an error lists; the count says the rest.
const maxListed = 10

// validateTensors is the one check of a source's tensors against its
// config.json, shared by convert and export and run before anything is
// written: every tensor the architecture expects for this config present,
// with the shape the config implies and a float dtype where the list has one
// (in an artifact: a float or quantized scheme). It returns the source tensors the config does not
// use, sorted. Architectures without a tensor list pass unchecked.
func validateTensors(arch *Arch, cfg *Config, w *weights) (unused []string, err error) {
	if arch == nil || arch.Tensors == nil || cfg == nil {
		return nil, nil
	}
	specs, err := arch.Tensors(arch, cfg, w.has("pooler.dense.weight"))
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(specs))
	for _, sp := range specs {
		want[sp.Name] = true
		shape, scheme, err := w.info(sp.Name)
		if err != nil {
			return nil, err
		}
		if scheme == SchemeCopy && isFloat(sp.DType) { // counters (num_batches_tracked) are integers
			e, _ := w.ckpt.Lookup(sp.Name)
			return nil, tensorErr(w.path, sp.Name, ErrTensorDType, "is %s; a float tensor (F32, F16, BF16, F64) is expected", e.DType)
		}
		if !slices.Equal(shape, sp.Shape) {
			return nil, tensorErr(w.path, sp.Name, ErrTensorShape, "has shape %v but config.json implies %v", shape, sp.Shape)
		}
	}
	for _, n := range w.names() {
		if !want[n] {
			unused = append(unused, n)
		}
	}
	sort.Strings(unused)
	return unused, nil
}

// unusedErr reports tensors the config does not use, listing the first
// maxListed.
func unusedErr(path string, unused []string) error {
	list := unused
	more := ""
	if len(list) > maxListed {
		list, more = list[:maxListed], fmt.Sprintf(" and %d more", len(unused)-maxListed)
	}
	return fmt.Errorf("%s: %w: %d tensors: %s%s (check num_hidden_layers and the architecture in config.json, or pass --allow-unused to export without them)",
		path, ErrUnusedTensors, len(unused), strings.Join(list, ", "), more)
}

// names lists the source's tensors by their logical names.
func (w *weights) names() []string {
	var out []string
	if w.recs != nil {
		for n := range w.recs {
			out = append(out, n)
		}
		return out
	}
	for _, e := range w.ckpt.Tensors() {
		out = append(out, e.Name)
	}
	return out
}
