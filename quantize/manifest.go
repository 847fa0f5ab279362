package quantize

import (
	"github.com/quantpack/quantpack/internal/manifest"
)

// Format is the "format" of the quantpack.json that quantize writes.
const Format = "quantpack.quantize/v1"

// Manifest is the quantpack.json of a statically quantized model.
type Manifest struct {
	Format      string `json:"format"`
	Kind        string `json:"kind"` // "onnx"
	ToolVersion string `json:"tool_version"`
	Precision   string `json:"precision"` // "int8"
	Int8Mode    string `json:"int8_mode"` // "static"
	// Method, Percentile: how activation ranges were chosen.
	Method     Method   `json:"method"`
	Percentile *float64 `json:"percentile,omitempty"`
	// ActivationType is the activations' integer type (asymmetric);
	// WeightScheme says how weights are stored.
	ActivationType QType  `json:"activation_type"`
	WeightScheme   string `json:"weight_scheme"`
	Opset          int64  `json:"opset"`
	// OpsetUpgradedFrom is the source's default-domain opset when the pass
	// raised it to 13 for per-channel weights (no node changes meaning).
	OpsetUpgradedFrom int64    `json:"opset_upgraded_from,omitempty"`
	Exclude           []string `json:"exclude,omitempty"`
	IncludeOps        []string `json:"include_ops,omitempty"`
	// Source is the FP32 model quantized (path and the sha256 of its
	// model file and data file).
	Source      ModelSource    `json:"source"`
	Calibration SourceInfo     `json:"calibration"`
	Activations []ActRecord    `json:"activations"`
	Weights     []WeightRecord `json:"weights"`
	// Float lists the nodes left float and why: kept-float op types
	// (LayerNorm, Softmax, GELU, attention), excluded nodes, MatMuls without
	// a constant weight, nodes fed by a tensor with NaN/Inf.
	Float []FloatNode `json:"float"`
	// Accuracy records --min-cosine: agreement on held-out samples, the
	// sensitivity ranking and the nodes left float for it.
	Accuracy *Accuracy `json:"accuracy,omitempty"`
	// QuantizedNodes counts the nodes given QDQ, by op type.
	QuantizedNodes map[string]int `json:"quantized_nodes"`
	// Ops counts the op types of the output graph.
	Ops   map[string]int  `json:"ops"`
	Sizes Sizes           `json:"sizes"`
	Files []manifest.File `json:"files"`
}

// ModelSource names the model that was quantized.
type ModelSource struct {
	Path        string          `json:"path"`
	Files       []manifest.File `json:"files"`
	SourceBytes int64           `json:"-"`
}

// Sizes compares the output's files with the source's.
type Sizes struct {
	ModelBytes  int64   `json:"model_bytes"`
	DataBytes   int64   `json:"data_bytes"`
	TotalBytes  int64   `json:"total_bytes"`
	SourceBytes int64   `json:"source_bytes"`
	Ratio       float64 `json:"ratio"`
}

// ActRecord is one quantized activation tensor: what calibration saw, the
// range chosen, the parameters written and the fraction of values the
// range clips.
type ActRecord struct {
	Tensor    string     `json:"tensor"`
	Consumers []string   `json:"consumers"`
	Min       float64    `json:"min"`
	Max       float64    `json:"max"`
	Range     [2]float64 `json:"range"`
	Scale     float32    `json:"scale"`
	ZeroPoint int        `json:"zero_point"`
	Clipped   float64    `json:"clipped_fraction"`
	Count     int64      `json:"count"`
}
