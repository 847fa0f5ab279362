// capi.h declares the part of ONNX Runtime's C API (onnxruntime_c_api.h,
// ORT_API_VERSION 24) that verify/ort calls directly, without including that
// 8,000-line header.
//
// OrtApi is a struct made only of function pointers, append-only across ORT
// releases, so a function is reached by its index in that struct. The indices
// live in capi_index.h, generated from the real header by gen_capi_index.go;
// TestCAPIMatchesHeader compiles this file against the real header and checks
// every index and every function type, so a wrong declaration fails the test
// instead of corrupting memory.
#ifndef QUANTPACK_ORT_CAPI_H
#define QUANTPACK_ORT_CAPI_H

#include <stddef.h>
#include <stdint.h>

#ifndef QP_NO_INDEX
#include "capi_index.h"
#endif

// The API version the indices were generated for. GetApi(24) succeeds on ORT
// 1.24 and later, and Session_GetEpGraphAssignmentInfo (the newest function
// used) is "since 1.24".
#define QP_ORT_API_VERSION 24

// Opaque ORT types. The real header declares the same typedefs.
typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtValue OrtValue;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtAllocator OrtAllocator;
typedef struct OrtTypeInfo OrtTypeInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtEpDevice OrtEpDevice;
typedef struct OrtHardwareDevice OrtHardwareDevice;
typedef struct OrtEpAssignedSubgraph OrtEpAssignedSubgraph;
typedef struct OrtEpAssignedNode OrtEpAssignedNode;
typedef struct OrtCUDAProviderOptionsV2 OrtCUDAProviderOptionsV2;

// Enums are passed as their underlying integer type: unsigned int for enums
// without negative values (OrtLoggingLevel, ONNXTensorElementDataType,
// ONNXType, OrtErrorCode, OrtHardwareDeviceType), int for OrtAllocatorType
// and OrtMemType, which have negative values. The header check verifies this.
enum {
	QP_ORT_LOGGING_LEVEL_WARNING = 2,
	QP_ORT_LOGGING_LEVEL_FATAL = 4,
	QP_ORT_FAIL = 1,
	QP_ORT_INVALID_ARGUMENT = 2,
	QP_ONNX_TYPE_TENSOR = 1,
	QP_ORT_DEVICE_ALLOCATOR = 0,  // OrtDeviceAllocator
	QP_ORT_MEM_TYPE_DEFAULT = 0,  // OrtMemTypeDefault
	QP_ORT_HW_CPU = 0,            // OrtHardwareDeviceType_CPU
	QP_ORT_HW_GPU = 1,            // OrtHardwareDeviceType_GPU
	QP_ORT_HW_NPU = 2,            // OrtHardwareDeviceType_NPU
	QP_ORT_PARALLEL = 1,          // ExecutionMode ORT_PARALLEL
	QP_ORT_DISABLE_ALL = 0,       // GraphOptimizationLevel
	QP_ORT_ENABLE_BASIC = 1,
	QP_ORT_ENABLE_EXTENDED = 2,
	QP_ORT_ENABLE_ALL = 99,
};

// OrtApiBase, as returned by OrtGetApiBase.
typedef struct qp_api_base {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} qp_api_base;

// QP_ORT_FUNCS lists every OrtApi member used: X(name, return type, params).
#define QP_ORT_FUNCS(X)                                                                     \
	X(CreateEnv, OrtStatus *, (unsigned int, const char *, OrtEnv **))                      \
	X(CreateStatus, OrtStatus *, (unsigned int, const char *))                              \
	X(GetErrorCode, unsigned int, (const OrtStatus *))                                      \
	X(GetErrorMessage, const char *, (const OrtStatus *))                                   \
	X(ReleaseStatus, void, (OrtStatus *))                                                   \
	X(ReleaseEnv, void, (OrtEnv *))                                                         \
	X(CreateCpuMemoryInfo, OrtStatus *, (int, int, OrtMemoryInfo **))                       \
	X(ReleaseMemoryInfo, void, (OrtMemoryInfo *))                                           \
	X(GetAllocatorWithDefaultOptions, OrtStatus *, (OrtAllocator **))                       \
	X(AllocatorFree, OrtStatus *, (OrtAllocator *, void *))                                 \
	X(CreateSession, OrtStatus *,                                                           \
	  (const OrtEnv *, const char *, const OrtSessionOptions *, OrtSession **))             \
	X(CreateSessionFromArray, OrtStatus *,                                                  \
	  (const OrtEnv *, const void *, size_t, const OrtSessionOptions *, OrtSession **))     \
	X(ReleaseSession, void, (OrtSession *))                                                 \
	X(SessionGetInputCount, OrtStatus *, (const OrtSession *, size_t *))                    \
	X(SessionGetOutputCount, OrtStatus *, (const OrtSession *, size_t *))                   \
	X(SessionGetInputName, OrtStatus *, (const OrtSession *, size_t, OrtAllocator *, char **)) \
	X(SessionGetOutputName, OrtStatus *, (const OrtSession *, size_t, OrtAllocator *, char **)) \
	X(SessionGetInputTypeInfo, OrtStatus *, (const OrtSession *, size_t, OrtTypeInfo **))   \
	X(SessionGetOutputTypeInfo, OrtStatus *, (const OrtSession *, size_t, OrtTypeInfo **))  \
	X(GetOnnxTypeFromTypeInfo, OrtStatus *, (const OrtTypeInfo *, unsigned int *))          \
	X(CastTypeInfoToTensorInfo, OrtStatus *,                                                \
	  (const OrtTypeInfo *, const OrtTensorTypeAndShapeInfo **))                            \
	X(ReleaseTypeInfo, void, (OrtTypeInfo *))                                               \
	X(GetTensorElementType, OrtStatus *, (const OrtTensorTypeAndShapeInfo *, unsigned int *)) \
	X(GetDimensionsCount, OrtStatus *, (const OrtTensorTypeAndShapeInfo *, size_t *))       \
	X(GetDimensions, OrtStatus *, (const OrtTensorTypeAndShapeInfo *, int64_t *, size_t))   \
	X(GetSymbolicDimensions, OrtStatus *,                                                   \
	  (const OrtTensorTypeAndShapeInfo *, const char *[], size_t))                          \
	X(ReleaseTensorTypeAndShapeInfo, void, (OrtTensorTypeAndShapeInfo *))                   \
	X(CreateTensorWithDataAsOrtValue, OrtStatus *,                                          \
	  (const OrtMemoryInfo *, void *, size_t, const int64_t *, size_t, unsigned int, OrtValue **)) \
	X(GetTensorTypeAndShape, OrtStatus *, (const OrtValue *, OrtTensorTypeAndShapeInfo **)) \
	X(GetTensorMutableData, OrtStatus *, (OrtValue *, void **))                             \
	X(ReleaseValue, void, (OrtValue *))                                                     \
	X(CreateRunOptions, OrtStatus *, (OrtRunOptions **))                                    \
	X(RunOptionsSetTerminate, OrtStatus *, (OrtRunOptions *))                               \
	X(RunOptionsUnsetTerminate, OrtStatus *, (OrtRunOptions *))                             \
	X(ReleaseRunOptions, void, (OrtRunOptions *))                                           \
	X(Run, OrtStatus *,                                                                     \
	  (OrtSession *, const OrtRunOptions *, const char *const *, const OrtValue *const *,   \
	   size_t, const char *const *, size_t, OrtValue **))                                   \
	X(SessionEndProfiling, OrtStatus *, (OrtSession *, OrtAllocator *, char **))            \
	X(HasSessionConfigEntry, OrtStatus *, (const OrtSessionOptions *, const char *, int *)) \
	X(RegisterExecutionProviderLibrary, OrtStatus *, (OrtEnv *, const char *, const char *)) \
	X(GetEpDevices, OrtStatus *, (const OrtEnv *, const OrtEpDevice *const **, size_t *))   \
	X(SessionOptionsAppendExecutionProvider_V2, OrtStatus *,                                \
	  (OrtSessionOptions *, OrtEnv *, const OrtEpDevice *const *, size_t,                   \
	   const char *const *, const char *const *, size_t))                                   \
	X(EpDevice_EpName, const char *, (const OrtEpDevice *))                                 \
	X(EpDevice_EpVendor, const char *, (const OrtEpDevice *))                               \
	X(EpDevice_Device, const OrtHardwareDevice *, (const OrtEpDevice *))                    \
	X(HardwareDevice_Type, unsigned int, (const OrtHardwareDevice *))                       \
	X(Session_GetEpGraphAssignmentInfo, OrtStatus *,                                        \
	  (const OrtSession *, const OrtEpAssignedSubgraph *const **, size_t *))                \
	X(EpAssignedSubgraph_GetEpName, OrtStatus *, (const OrtEpAssignedSubgraph *, const char **)) \
	X(EpAssignedSubgraph_GetNodes, OrtStatus *,                                             \
	  (const OrtEpAssignedSubgraph *, const OrtEpAssignedNode *const **, size_t *))         \
	X(EpAssignedNode_GetName, OrtStatus *, (const OrtEpAssignedNode *, const char **))      \
	X(EpAssignedNode_GetOperatorType, OrtStatus *, (const OrtEpAssignedNode *, const char **)) \
	X(CreateSessionOptions, OrtStatus *, (OrtSessionOptions **))                            \
	X(ReleaseSessionOptions, void, (OrtSessionOptions *))                                   \
	X(SetIntraOpNumThreads, OrtStatus *, (OrtSessionOptions *, int))                        \
	X(SetInterOpNumThreads, OrtStatus *, (OrtSessionOptions *, int))                        \
	X(SetSessionExecutionMode, OrtStatus *, (OrtSessionOptions *, unsigned int))            \
	X(SetSessionGraphOptimizationLevel, OrtStatus *, (OrtSessionOptions *, unsigned int))   \
	X(AddSessionConfigEntry, OrtStatus *, (OrtSessionOptions *, const char *, const char *)) \
	X(EnableProfiling, OrtStatus *, (OrtSessionOptions *, const char *))                    \
	X(CreateCUDAProviderOptions, OrtStatus *, (OrtCUDAProviderOptionsV2 **))                \
	X(SessionOptionsAppendExecutionProvider_CUDA_V2, OrtStatus *,                           \
	  (OrtSessionOptions *, const OrtCUDAProviderOptionsV2 *))                              \
	X(ReleaseCUDAProviderOptions, void, (OrtCUDAProviderOptionsV2 *))

#define QP_ORT_TYPEDEF(name, ret, params) typedef ret(*qp_##name##_fn) params;
QP_ORT_FUNCS(QP_ORT_TYPEDEF)
#undef QP_ORT_TYPEDEF

// ---- functions implemented in capi.c, called from Go ----

// qp_load finds OrtGetApiBase in the already loaded library at path, takes
// the API table for QP_ORT_API_VERSION and the process-wide OrtEnv (ORT keeps
// one OrtEnv per process and CreateEnv returns it with a reference added) and
// a CPU memory description. On failure it returns nonzero and writes a message
// into err.
int qp_load(const char *path, char *err, size_t errlen);
const char *qp_version(void);

unsigned int qp_status_code(OrtStatus *st);
const char *qp_status_message(OrtStatus *st);
void qp_status_release(OrtStatus *st);

OrtStatus *qp_session_create(OrtSessionOptions *opts, const char *path, const void *data,
                             size_t len, OrtSession **out);
void qp_session_release(OrtSession *s);
OrtStatus *qp_io_count(OrtSession *s, int output, size_t *n);
OrtStatus *qp_io_info(OrtSession *s, int output, size_t i, char **name, unsigned int *onnx_type,
                      unsigned int *elem, size_t *rank);
OrtStatus *qp_io_dims(OrtSession *s, int output, size_t i, int64_t *dims, size_t rank,
                      char **sym, size_t *symlen);

OrtStatus *qp_tensor(void *data, size_t bytes, const int64_t *shape, size_t rank,
                     unsigned int elem, OrtValue **out);
void qp_value_release(OrtValue *v);
OrtStatus *qp_value_info(OrtValue *v, unsigned int *elem, size_t *rank, void **data);
OrtStatus *qp_value_dims(OrtValue *v, int64_t *dims, size_t rank);

OrtStatus *qp_runopts(OrtRunOptions **out);
OrtStatus *qp_runopts_terminate(OrtRunOptions *o, int on);
void qp_runopts_release(OrtRunOptions *o);
OrtStatus *qp_run(OrtSession *s, OrtRunOptions *o, char **in_names, OrtValue **ins, size_t nin,
                  char **out_names, OrtValue **outs, size_t nout);

OrtStatus *qp_end_profiling(OrtSession *s, char **path);
OrtStatus *qp_assignment(OrtSession *s, char **blob, size_t *len);
OrtStatus *qp_has_config(OrtSessionOptions *o, const char *key, int *out);

// Session options, built here rather than by onnxruntime_go so that no
// handle has to be taken out of another binding's unexported fields.
OrtStatus *qp_sessopts_create(OrtSessionOptions **out);
void qp_sessopts_release(OrtSessionOptions *o);
OrtStatus *qp_sessopts_threads(OrtSessionOptions *o, int intra, int inter);
OrtStatus *qp_sessopts_optlevel(OrtSessionOptions *o, unsigned int level);
OrtStatus *qp_sessopts_config(OrtSessionOptions *o, const char *key, const char *value);
OrtStatus *qp_sessopts_profiling(OrtSessionOptions *o, const char *prefix);
OrtStatus *qp_sessopts_cuda(OrtSessionOptions *o);

OrtStatus *qp_register_ep(const char *name, const char *path);
OrtStatus *qp_ep_devices(char **blob, size_t *len, size_t *n);
OrtStatus *qp_append_ep(OrtSessionOptions *o, size_t index);

#endif
