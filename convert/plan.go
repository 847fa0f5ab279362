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

// geomOf is the geometry a tensor's layout is planned and written with.
func geomOf(t safetensors.TensorInfo, opt *Options) geom {
	return geom{Shape: t.Shape, DType: t.DType, Block: int64(opt.blockSize()), Asym: opt.Asymmetric,
		DoubleQuant: opt.doubleQuant(), TorchDType: opt.restTorchDType()}
}

// planItem fills in the outputs of one tensor from its scheme's layout
// (layout.go); it sizes every output before anything is allocated.
func planItem(it *item, opt *Options) error {
	l := layoutOf(it.scheme)
	if l == nil {
		return fmt.Errorf("convert: internal: unknown scheme %q", it.scheme)
	}
	it.geom = geomOf(it.src.TensorInfo, opt)
	var err error
	it.outs, it.parts, err = l.specs(it.src.Name, it.geom)
	return err
}
