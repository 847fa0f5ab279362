package ort

// Graph optimization levels, numbered as ONNX Runtime's
// GraphOptimizationLevel except for OptDisable: the zero Options must mean
// "all optimizations" (ONNX Runtime's own default), so 0 selects OptAll and
// disabling takes an explicit -1.
const (
	OptDefault  = 0  // same as OptAll
	OptDisable  = -1 // ORT_DISABLE_ALL
	OptBasic    = 1  // ORT_ENABLE_BASIC
	OptExtended = 2  // ORT_ENABLE_EXTENDED
	OptAll      = 99 // ORT_ENABLE_ALL
)

// Devices.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// Options configure a Session. The zero value runs on the CPU with all graph
// optimizations and ONNX Runtime's default thread counts.
type Options struct {
	// IntraOpThreads is the size of the thread pool inside operators.
	// 0 leaves ONNX Runtime's default (one thread per physical core, pinned);
	// quantpack's measurements set it explicitly and record it.
	IntraOpThreads int
	// InterOpThreads is the size of the pool that runs independent nodes in
	// parallel. 0 keeps sequential execution; a value above 1 switches the
	// session to ORT_PARALLEL, the only mode that uses this pool.
	InterOpThreads int
	// OptLevel is the graph optimization level (OptDisable, OptBasic,
	// OptExtended, OptAll; 0 means OptAll).
	OptLevel int
	// Device is DeviceCPU (the default, also for "") or DeviceCUDA.
	Device string
	// EPLibrary is the path of a plugin execution provider library (ORT's
	// RegisterExecutionProviderLibrary), such as the CUDA plugin. With it,
	// Device "cuda" selects that library's GPU device instead of the classic
	// CUDA provider built into GPU releases of ONNX Runtime.
	EPLibrary string
	// ProfilePrefix enables ONNX Runtime's profiler; it writes
	// PREFIX_<date>_<time>.json when profiling ends (EndProfiling, Placement
	// or Close). Session.ProfileFile returns that path.
	ProfilePrefix string
	// ExternalDataDir is the folder that holds external initializer files
	// when the model is given as bytes (OpenBytes); Open finds them next to
	// the model file by itself.
	ExternalDataDir string
}

// normalized checks o and fills in defaults.
func (o Options) normalized() (Options, error) {
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return o, errorf(ErrOptions, "", "", "", "thread counts must be ≥ 0 (intra %d, inter %d)", o.IntraOpThreads, o.InterOpThreads)
	}
	switch o.OptLevel {
	case OptDefault:
		o.OptLevel = OptAll
	case OptDisable, OptBasic, OptExtended, OptAll:
	default:
		return o, errorf(ErrOptions, "", "", "", "optimization level %d is not one of -1 (disable), 1 (basic), 2 (extended), 99 (all)", o.OptLevel)
	}
	switch o.Device {
	case "":
		o.Device = DeviceCPU
	case DeviceCPU, DeviceCUDA:
	default:
		return o, errorf(ErrOptions, "", "", "", "device %q is not %q or %q", o.Device, DeviceCPU, DeviceCUDA)
	}
	if o.EPLibrary != "" && o.Device != DeviceCUDA {
		return o, errorf(ErrOptions, "", o.EPLibrary, "", "an execution provider library needs device %q", DeviceCUDA)
	}
	return o, nil
}
