package convert

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/formats/safetensors"
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
	if arch == nil || cfg == nil {
		return nil, nil
	}
	specs, err := arch.Tensors(cfg, w.has("pooler.dense.weight"))
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

// refuseQuantized returns ErrQuantizedInput, naming what was found, when the
// checkpoint holds quantized weights (the layouts inspect reports).
func refuseQuantized(path string, ck *safetensors.Checkpoint) error {
	found, _ := QuantSchemes(ck)
	if len(found) == 0 {
		return nil
	}
	var what []string
	for _, q := range found {
		what = append(what, fmt.Sprintf("%s (%s, %d tensors)", q.Scheme, q.Writer, q.Tensors))
	}
	return fmt.Errorf("%s: %w: %s; convert needs the original float checkpoint, or --dequantize-input to requantize its reconstruction (quantpack inspect %s shows the layout)",
		path, ErrQuantizedInput, strings.Join(what, ", "), path)
}

// nonFiniteErr returns ErrNonFinite naming the tensors with NaN or ±Inf.
func nonFiniteErr(path string, items []*item) error {
	var names []string
	for _, it := range items {
		if nf := it.rec.NonFinite; nf.any() {
			names = append(names, fmt.Sprintf("%s (source %d NaN %d Inf, output %d NaN %d Inf)",
				it.rec.Name, nf.Source.NaN, nf.Source.Inf, nf.Output.NaN, nf.Output.Inf))
		}
	}
	if len(names) == 0 {
		return nil
	}
	n := len(names)
	more := ""
	if n > maxListed {
		names, more = names[:maxListed], fmt.Sprintf(" and %d more", n-maxListed)
	}
	return fmt.Errorf("%s: %w: %d tensors: %s%s", path, ErrNonFinite, n, strings.Join(names, "; "), more)
}
