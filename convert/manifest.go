package convert

import (
	"math"

	"github.com/quantpack/quantpack/hub"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/quant"
)

// ManifestFormat identifies quantpack.json documents written by convert.
const ManifestFormat = "quantpack-artifact/1"

// Manifest is the quantpack.json of a converted artifact. Every member is
// documented in the README ("Manifest").
type Manifest struct {
	Format       string          `json:"format"`
	Kind         string          `json:"kind"` // "safetensors"
	ToolVersion  string          `json:"tool_version"`
	Precision    Precision       `json:"precision"`
	Scheme       SchemeParams    `json:"scheme"`
	Architecture string          `json:"architecture"`
	ModelType    string          `json:"model_type,omitempty"`
	Sources      []manifest.File `json:"sources"`
	Hub          *hub.Source     `json:"hub,omitempty"` // set when SRC was a Hub id
	// Dequantized is set when the source was already quantized and was
	// dequantized first (convert --dequantize-input).
	Dequantized *Dequantized    `json:"dequantized,omitempty"`
	Totals      Totals          `json:"totals"`
	Tensors     []*TensorRecord `json:"tensors"`
	Files       []manifest.File `json:"files"`
	// Auto is what --precision auto chose and measured (nil otherwise);
	// each tensor's scheme is in Tensors.
	Auto *AutoRecord `json:"auto,omitempty"`
}

// SchemeParams records every choice that changes the output bytes.
type SchemeParams struct {
	BlockSize   int      `json:"block_size,omitempty"`
	DoubleQuant bool     `json:"double_quant,omitempty"`
	Symmetric   *bool    `json:"symmetric,omitempty"`
	RestDType   string   `json:"rest_dtype"`
	Keep        []string `json:"keep,omitempty"`
	Int8        string   `json:"int8,omitempty"`
	NibbleOrder string   `json:"nibble_order,omitempty"`
	// BlockPerTensor: no --block-size was given and the int4 weights'
	// blocks differ (the per-tensor rule, docs/accuracy.md "Per-tensor
	// block size"); BlockSize is then the nominal (largest) block and each
	// tensor's own is in tensors[].block_size.
	BlockPerTensor bool `json:"block_per_tensor,omitempty"`
	// Overrides are per-tensor precisions against the artifact's (a
	// --precision auto mix); each tensor's scheme is in Tensors.
	Overrides map[string]Precision `json:"overrides,omitempty"`
	// Method is the 4-bit method that chose the block scales (rtn, mse,
	// hqq); int4 and nf4 only.
	Method quant.Method `json:"method,omitempty"`
	// AWQ records an awq conversion: base method, calibration, groups.
	AWQ *AWQScheme `json:"awq,omitempty"`
}

// Totals summarises the conversion; these are the --json summary's numbers.
type Totals struct {
	Params          int64   `json:"params"`
	QuantizedParams int64   `json:"quantized_params"`
	BytesIn         int64   `json:"bytes_in"`
	BytesOut        int64   `json:"bytes_out"`
	Ratio           float64 `json:"ratio"`
	BitsPerParam    float64 `json:"bits_per_param"`
	TensorsIn       int     `json:"tensors_in"`
	TensorsOut      int     `json:"tensors_out"`
	FP16Overflow    int64   `json:"fp16_overflow"`
	// MinSQNRdB is the lowest SQNR over the tensors; absent when a tensor
	// holds NaN or ±Inf (its error is unbounded), which WorstTensor then
	// names.
	MinSQNRdB   *float64 `json:"min_sqnr_db,omitempty"`
	WorstTensor string   `json:"worst_tensor,omitempty"`
	// NonFiniteTensors counts the tensors with a NaN or ±Inf in the source
	// or the output; NonFinite sums their values.
	NonFiniteTensors int        `json:"non_finite_tensors"`
	NonFinite        *NonFinite `json:"non_finite,omitempty"`
}

// NonFinite counts NaN and ±Inf values of a tensor in the source and in the
// output (its dequantized reconstruction).
type NonFinite struct {
	Source quant.NonFiniteCount `json:"source"`
	Output quant.NonFiniteCount `json:"output"`
}

func (n *NonFinite) any() bool { return n != nil && (n.Source.Any() || n.Output.Any()) }

// TensorRecord is one source tensor in the manifest.
type TensorRecord struct {
	Name     string      `json:"name"`
	Role     Role        `json:"role"`
	Scheme   string      `json:"scheme"`
	DType    string      `json:"dtype"`
	Shape    []int64     `json:"shape"`
	BytesIn  int64       `json:"bytes_in"`
	BytesOut int64       `json:"bytes_out"`
	Outputs  []string    `json:"outputs"`
	Error    *ErrorStats `json:"error,omitempty"`
	Overflow int64       `json:"overflow,omitempty"`
	// BlockSize is an int4 or nf4 weight's block, as written.
	BlockSize int `json:"block_size,omitempty"`
	// NonFinite is set when the tensor holds NaN or ±Inf values.
	NonFinite *NonFinite `json:"non_finite,omitempty"`
	// Nested offset of nf4 double quant, also in the quant_state JSON.
	NestedOffset *float32 `json:"nested_offset,omitempty"`
	// AWQ: how --method awq scaled this tensor or what it absorbed.
	AWQ *AWQTensor `json:"awq,omitempty"`
}

// ErrorStats is quant.ErrorStats made JSON-safe: SQNR is null when the
// reconstruction is exact (infinite SQNR) and Exact is set. For a tensor
// with NaN or ±Inf values SQNR is null too and Exact false: its error is
// unbounded (the record's non_finite says how many); Cosine, MaxAbs and
// RMSE then describe the finite pairs only.
type ErrorStats struct {
	SQNRdB *float64 `json:"sqnr_db"`
	Cosine float64  `json:"cosine"`
	MaxAbs float64  `json:"max_abs"`
	RMSE   float64  `json:"rmse"`
	Exact  bool     `json:"exact,omitempty"`
}

func jsonStats(s quant.ErrorStats) *ErrorStats {
	e := &ErrorStats{Cosine: finite(s.Cosine), MaxAbs: finite(s.MaxAbs), RMSE: finite(s.RMSE)}
	if s.NonFinite > 0 {
		return e
	}
	if math.IsInf(s.SQNRdB, 1) || math.IsNaN(s.SQNRdB) {
		e.Exact = s.MaxAbs == 0
	} else {
		v := s.SQNRdB
		e.SQNRdB = &v
	}
	return e
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
