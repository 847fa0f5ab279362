package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// item is one source tensor and what it becomes.
type item struct {
	src    safetensors.Entry
	role   Role
	scheme string
	outs   []safetensors.TensorSpec
	parts  []tensorPart // the layout rows outs come from, in the same order
	geom   geom         // what outs were sized by
	rec    *TensorRecord
}

// geomOf is the geometry a tensor's layout is planned and written with. An
// int4 weight's block is its own (Options.int4Block: per tensor unless
// --block-size was given); nf4's is the option's, since bitsandbytes blocks
// the flattened tensor and pads only its end.
func geomOf(t safetensors.TensorInfo, scheme string, opt *Options) geom {
	g := geom{Shape: t.Shape, DType: t.DType, Block: int64(opt.blockSize()), Asym: opt.Asymmetric,
		DoubleQuant: opt.doubleQuant(), TorchDType: opt.restTorchDType()}
	if scheme == SchemeInt4 && len(t.Shape) == 2 {
		g.Block = opt.int4Block(t.Shape[1])
	}
	return g
}

// planItem fills in the outputs of one tensor from its scheme's layout
// (layout.go); it sizes every output before anything is allocated.
func planItem(it *item, opt *Options) error {
	l := layoutOf(it.scheme)
	if l == nil {
		return fmt.Errorf("convert: internal: unknown scheme %q", it.scheme)
	}
	it.geom = geomOf(it.src.TensorInfo, it.scheme, opt)
	var err error
	it.outs, it.parts, err = l.specs(it.src.Name, it.geom)
	return err
}
