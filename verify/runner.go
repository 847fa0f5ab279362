package verify

import "context"

// DType is the element type of a Tensor handed to or returned by a Runner.
type DType string

// Element types a Runner exchanges. Models keep float32 inputs and outputs
// even when their weights are fp16 (docs/design.md, docs/export.md), so
// Float32 is the common case; Float16 exists for graphs that expose
// half-precision I/O.
const (
	Float32 DType = "float32"
	Float16 DType = "float16"
	Int64   DType = "int64"
)

// Tensor is a dense row-major tensor. Exactly one of F32 (Float32), U16
// (Float16 bit patterns) or I64 (Int64) is set, according to DType.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	F32   []float32
	U16   []uint16
	I64   []int64
}

// IOInfo describes one model input or output. A dimension of -1 is dynamic
// (the batch dimension of quantpack exports).
type IOInfo struct {
	Name  string
	DType DType
	Shape []int64
}

// Placement counts which execution provider ran each node of a session.
type Placement struct {
	// Providers maps an execution provider name to the number of nodes it ran.
	Providers map[string]int `json:"providers"`
	// FellBackToCPU is the number of nodes that ran on the CPU provider in a
	// session that asked for another one first.
	FellBackToCPU int `json:"fell_back_to_cpu"`
	// Nodes lists "node_name op_type provider" where known.
	Nodes []string `json:"nodes,omitempty"`
}

// Runner runs one loaded model. verify/ort implements it with ONNX Runtime;
// tests of the surrounding logic may use a fake.
type Runner interface {
	Inputs() []IOInfo
	Outputs() []IOInfo
	// Run executes the model once. Inputs are matched by name.
	Run(ctx context.Context, inputs []Tensor) ([]Tensor, error)
	Close() error
}
