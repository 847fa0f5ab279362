package convert

import (
	"math"

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
	Totals       Totals          `json:"totals"`
	Tensors      []*TensorRecord `json:"tensors"`
	Files        []manifest.File `json:"files"`
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
	// Method is the 4-bit method that chose the block scales (rtn, mse,
	// hqq); int4 and nf4 only.
	Method quant.Method `json:"method,omitempty"`
}

// Totals summarises the conversion; these are the --json summary's numbers.
type Totals struct {
	Params          int64    `json:"params"`
	QuantizedParams int64    `json:"quantized_params"`
	BytesIn         int64    `json:"bytes_in"`
	BytesOut        int64    `json:"bytes_out"`
	Ratio           float64  `json:"ratio"`
	BitsPerParam    float64  `json:"bits_per_param"`
	TensorsIn       int      `json:"tensors_in"`
	TensorsOut      int      `json:"tensors_out"`
	FP16Overflow    int64    `json:"fp16_overflow"`
	MinSQNRdB       *float64 `json:"min_sqnr_db,omitempty"`
	WorstTensor     string   `json:"worst_tensor,omitempty"`
}

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
	// Nested offset of nf4 double quant, also in the quant_state JSON.
	NestedOffset *float32 `json:"nested_offset,omitempty"`
}

// ErrorStats is quant.ErrorStats made JSON-safe: SQNR is null when the
// reconstruction is exact (infinite SQNR) and Exact is set.
type ErrorStats struct {
	SQNRdB *float64 `json:"sqnr_db"`
	Cosine float64  `json:"cosine"`
	MaxAbs float64  `json:"max_abs"`
	RMSE   float64  `json:"rmse"`
	Exact  bool     `json:"exact,omitempty"`
}

func jsonStats(s quant.ErrorStats) *ErrorStats {
	e := &ErrorStats{Cosine: finite(s.Cosine), MaxAbs: finite(s.MaxAbs), RMSE: finite(s.RMSE)}
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
