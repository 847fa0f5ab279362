package quantize

import "github.com/quantpack/quantpack/internal/fault"

// Sentinels. Typed errors and %w wrapping add the place (file, tensor,
// node, input).
var (
	// ErrOption is an invalid option (a method, a percentile, a type).
	ErrOption = fault.New(fault.Usage, "quantize: invalid option")
	// ErrNothingToQuantize is a graph with no node the pass can quantize;
	// the message lists the op types found.
	ErrNothingToQuantize = fault.New(fault.Unsupported, "quantize: no quantizable node")
	// ErrUnsupported is a model the pass cannot handle (an opset too old
	// for per-channel weights, a weight that is not float32).
	ErrUnsupported = fault.New(fault.Unsupported, "quantize: unsupported model")
	// ErrGraph is a graph that is inconsistent (a weight whose data does
	// not match its dims, a tensor name used twice).
	ErrGraph = fault.New(fault.Invalid, "quantize: invalid graph")
	// ErrNonFinite is a NaN or Inf where a number is needed.
	ErrNonFinite = fault.New(fault.Invalid, "quantize: NaN or Inf")
	// ErrCalibData is calibration data of the wrong shape or dtype, or for
	// an input the model does not have.
	ErrCalibData = fault.New(fault.Usage, "quantize: calibration data does not fit the model")
	// ErrBadNpy is a .npy file that cannot be read.
	ErrBadNpy = fault.New(fault.Invalid, "quantize: invalid .npy file")
	// ErrSource is a SRC that is neither an .onnx file nor a directory
	// holding model.onnx.
	ErrSource = fault.New(fault.Usage, "quantize: not an ONNX model")
)
