package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/quant"
)

// Sentinels of the orchestration.
var (
	// ErrModelPath is a BASELINE or CANDIDATE that is neither an export
	// directory with model.onnx nor an .onnx file.
	ErrModelPath = fault.New(fault.Usage, "verify: not an exported model")
	// ErrMismatch is a pair of models that cannot be compared: different
	// inputs, or no output that both have.
	ErrMismatch = fault.New(fault.Invalid, "verify: models cannot be compared")
	// ErrModelIO is a model whose inputs or outputs verify cannot drive:
	// not one float image input [N, 3, H, W], no usable output.
	ErrModelIO = fault.New(fault.Unsupported, "verify: unsupported model inputs or outputs")
)

// ModelFile names the graph inside an export directory.
const ModelFile = "model.onnx"

// ModelPaths resolves a BASELINE/CANDIDATE argument (an export directory
// or an .onnx file) into the model file and the folder beside it, as
// Compare does.
func ModelPaths(arg string) (model, dir string, err error) { return modelPaths(arg) }

// modelPaths resolves a BASELINE/CANDIDATE argument into the model file
// and the folder that holds its config.json and preprocessor_config.json.
func modelPaths(arg string) (model, dir string, err error) {
	st, err := os.Stat(arg)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrModelPath, err)
	}
	if st.IsDir() {
		model = filepath.Join(arg, ModelFile)
		if _, err := os.Stat(model); err != nil {
			return "", "", fmt.Errorf("%w: %s has no %s (run quantpack export first)", ErrModelPath, arg, ModelFile)
		}
		return model, arg, nil
	}
	if filepath.Ext(arg) != ".onnx" {
		return "", "", fmt.Errorf("%w: %s is neither a directory nor an .onnx file", ErrModelPath, arg)
	}
	return arg, filepath.Dir(arg), nil
}

// imageInput checks that r takes one float32 input [N, 3, H, W] and
// returns it with H and W (0 when dynamic).
func imageInput(r Runner, path string) (IOInfo, int, int, error) {
	in := r.Inputs()
	if len(in) != 1 {
		return IOInfo{}, 0, 0, fmt.Errorf("%w: %s has %d inputs; verify drives one image input [N,3,H,W]", ErrModelIO, path, len(in))
	}
	x := in[0]
	if x.DType != Float32 || len(x.Shape) != 4 || (x.Shape[1] != 3 && x.Shape[1] != -1) {
		return IOInfo{}, 0, 0, fmt.Errorf("%w: %s input %q is %s %v; want float32 [N,3,H,W]", ErrModelIO, path, x.Name, x.DType, x.Shape)
	}
	return x, int(max(x.Shape[2], 0)), int(max(x.Shape[3], 0)), nil
}

// Output names, in the order verify prefers them.
const (
	outLogits = "logits"
	outPooled = "pooler_output"
	outHidden = "last_hidden_state"
)

// outputChoice is the output both models are compared on.
type outputChoice struct {
	name string
	kind OutputKind
	// cls takes token 0 of a [N, tokens, dim] output.
	cls bool
}

// chooseOutput picks the output to compare: logits when both models have
// it, else pooler_output, else the CLS token of last_hidden_state, else a
// single rank-2 output both share as an embedding.
func chooseOutput(b, c Runner) (outputChoice, error) {
	has := func(r Runner, name string) (IOInfo, bool) {
		for _, o := range r.Outputs() {
			if o.Name == name {
				return o, true
			}
		}
		return IOInfo{}, false
	}
	for _, name := range []string{outLogits, outPooled, outHidden} {
		ob, okb := has(b, name)
		_, okc := has(c, name)
		if !okb || !okc {
			continue
		}
		switch {
		case name == outLogits:
			return outputChoice{name: name, kind: Logits}, nil
		case name == outHidden && len(ob.Shape) == 3:
			return outputChoice{name: name, kind: Embedding, cls: true}, nil
		case name == outPooled:
			return outputChoice{name: name, kind: Embedding}, nil
		}
	}
	bo, co := b.Outputs(), c.Outputs()
	if len(bo) == 1 && len(co) == 1 && bo[0].Name == co[0].Name && len(bo[0].Shape) == 2 {
		return outputChoice{name: bo[0].Name, kind: Embedding}, nil
	}
	names := func(r Runner) []string {
		var s []string
		for _, o := range r.Outputs() {
			s = append(s, o.Name)
		}
		return s
	}
	return outputChoice{}, fmt.Errorf("%w: no output to compare (baseline has %v, candidate %v; want %s, %s or %s in both)",
		ErrMismatch, names(b), names(c), outLogits, outPooled, outHidden)
}

// extract returns the chosen output of a run as [n, dim] float32 rows.
func (oc outputChoice) extract(outs []Tensor, n int, path string) ([]float32, int, error) {
	i := slices.IndexFunc(outs, func(t Tensor) bool { return t.Name == oc.name })
	if i < 0 {
		return nil, 0, fmt.Errorf("%w: %s returned no output %q", ErrModelIO, path, oc.name)
	}
	t := outs[i]
	vals := t.F32
	switch t.DType {
	case Float32:
	case Float16:
		vals = make([]float32, len(t.U16))
		quant.F16ToF32(vals, t.U16)
	default:
		return nil, 0, fmt.Errorf("%w: %s output %q is %s, not a float", ErrModelIO, path, oc.name, t.DType)
	}
	want := 2
	if oc.cls {
		want = 3
	}
	if len(t.Shape) != want || t.Shape[0] != int64(n) || len(vals) == 0 {
		return nil, 0, fmt.Errorf("%w: %s output %q has shape %v for a batch of %d", ErrModelIO, path, oc.name, t.Shape, n)
	}
	if oc.cls {
		rows, err := CLSToken(vals, int(t.Shape[1]), int(t.Shape[2]))
		return rows, int(t.Shape[2]), err
	}
	if dim := int(t.Shape[1]); dim < 1 || len(vals) != n*dim {
		return nil, 0, fmt.Errorf("%w: %s output %q has %d values for shape %v", ErrModelIO, path, oc.name, len(vals), t.Shape)
	}
	return vals, int(t.Shape[1]), nil
}
