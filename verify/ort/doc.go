// Package ort runs ONNX models with ONNX Runtime and implements
// verify.Runner. It is quantpack's only cgo package; built without cgo it
// keeps its API and every call fails with ErrUnavailable.
//
// Specs: the ONNX Runtime C API, https://onnxruntime.ai/docs/api/c/ (the
// header onnxruntime_c_api.h, ORT_API_VERSION 24, ships inside
// github.com/yalue/onnxruntime_go v1.27.0); plugin execution providers,
// https://onnxruntime.ai/docs/execution-providers/plugin-ep-libraries.html;
// profiling output, https://onnxruntime.ai/docs/performance/tune-performance/profiling-tools.html;
// docs/design.md ("The ONNX Runtime binding").
//
// # Library
//
// The shared library is found at run time (LibraryPath: --ort-lib, then
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, then the copy `make ort` keeps in
// third_party/ort/) and loaded once per process by Init; Open calls Init
// itself when needed.
//
// # What goes through onnxruntime_go and what does not
//
// onnxruntime_go loads the library and creates the environment, nothing
// more. Session options (threads, optimization level, profiling, config
// entries, the classic CUDA provider, plugin providers), sessions and runs go
// through ONNX Runtime's C API directly (capi.c), because the binding
//   - needs every input and output name before it creates a session, which
//     would mean loading each model twice;
//   - copies float16/bfloat16 outputs that ONNX Runtime allocates short
//     (element count taken as bytes);
//   - does not wrap SessionEndProfiling, Session_GetEpGraphAssignmentInfo,
//     GetEpDevices or SessionOptionsAppendExecutionProvider_V2, nor expose
//     error codes.
//
// capi.c reaches the C API through the OrtApi table of the library the
// binding loaded, by index (capi_index.h, generated from the header and
// checked by TestCAPIMatchesHeader). No handle passes between the two
// bindings: the session options are ours too (sessionOptions in capi.go),
// so nothing reads the binding's unexported fields.
//
// # Running
//
// Run copies the inputs into pinned Go buffers that ONNX Runtime reads in
// place and, where output shapes are known, lets ONNX Runtime write the
// outputs into pinned Go buffers too; the buffers are kept per combination of
// input shapes (see plan), so repeated runs allocate only their results.
// Output shapes with a dynamic batch dimension are taken from the input
// dimension of the same symbolic name; outputs whose shape stays unknown are
// allocated by ONNX Runtime and copied out at their real size, whatever their
// element type.
//
// # Devices
//
// Device "cuda" uses the classic CUDA provider (AppendExecutionProviderCUDA)
// of a GPU release of ONNX Runtime; on a CPU-only build Open fails with
// ErrCUDAUnavailable. With Options.EPLibrary it registers a plugin execution
// provider library instead and appends that library's GPU device.
// Session.Placement reports where each node ran.
//
// # GPU memory
//
// GPUMemoryOfProcess reads a process's GPU memory through NVML
// (github.com/NVIDIA/go-nvml, which dlopens libnvidia-ml.so.1 on first
// use; API: https://docs.nvidia.com/deploy/nvml-api/). It lives here
// because go-nvml needs cgo; without a driver, or without cgo, it fails
// with ErrNVMLUnavailable.
package ort
