//go:build cgo

// capi.c calls ONNX Runtime's C API through the OrtApi table of the library
// that onnxruntime_go loaded (see capi.h). Every function that can fail
// returns an OrtStatus*; the Go side turns it into an error and releases it.
// Strings handed to Go are malloc'ed copies that Go frees.

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi.h"

typedef void (*any_fn)(void);
static const any_fn *api;        // the OrtApi table, as an array of function pointers
static const qp_api_base *base;  // OrtApiBase
static OrtEnv *env;              // the process-wide OrtEnv
static OrtMemoryInfo *cpu_mem;   // CPU memory description for tensors over Go memory

#define FN(name) ((qp_##name##_fn)api[QP_IDX_##name])

typedef const qp_api_base *(*get_api_base_fn)(void);

int qp_load(const char *path, char *err, size_t errlen) {
	if (api != NULL) {
		return 0;
	}
	// RTLD_NOLOAD: the library is already loaded by onnxruntime_go; this only
	// takes another reference to the same handle, never a second copy.
	void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (h == NULL) {
		h = dlopen(path, RTLD_LAZY);
	}
	if (h == NULL) {
		const char *m = dlerror();
		snprintf(err, errlen, "dlopen: %s", m ? m : "unknown error");
		return 1;
	}
	get_api_base_fn get = (get_api_base_fn)dlsym(h, "OrtGetApiBase");
	if (get == NULL) {
		snprintf(err, errlen, "OrtGetApiBase not found in %s", path);
		return 1;
	}
	const qp_api_base *b = get();
	if (b == NULL || b->GetApi == NULL) {
		snprintf(err, errlen, "OrtGetApiBase returned no API");
		return 1;
	}
	const any_fn *a = (const any_fn *)b->GetApi(QP_ORT_API_VERSION);
	if (a == NULL) {
		snprintf(err, errlen, "library %s (ORT %s) does not provide C API version %d (ORT 1.%d or newer)",
		         path, b->GetVersionString ? b->GetVersionString() : "?", QP_ORT_API_VERSION,
		         QP_ORT_API_VERSION);
		return 1;
	}
	api = a;
	base = b;
	// ORT's own log goes to stderr in colour; every failure that matters
	// comes back as an OrtStatus and is reported by quantpack, so only
	// fatal lines are let through (see Init in ort_cgo.go).
	OrtStatus *st = FN(CreateEnv)(QP_ORT_LOGGING_LEVEL_FATAL, "quantpack", &env);
	if (st == NULL) {
		st = FN(CreateCpuMemoryInfo)(QP_ORT_DEVICE_ALLOCATOR, QP_ORT_MEM_TYPE_DEFAULT, &cpu_mem);
	}
	if (st != NULL) {
		snprintf(err, errlen, "%s", FN(GetErrorMessage)(st));
		FN(ReleaseStatus)(st);
		api = NULL;
		return 1;
	}
	return 0;
}

const char *qp_version(void) {
	return base != NULL && base->GetVersionString != NULL ? base->GetVersionString() : "";
}

unsigned int qp_status_code(OrtStatus *st) { return FN(GetErrorCode)(st); }
const char *qp_status_message(OrtStatus *st) { return FN(GetErrorMessage)(st); }
void qp_status_release(OrtStatus *st) { FN(ReleaseStatus)(st); }

OrtStatus *qp_session_create(OrtSessionOptions *opts, const char *path, const void *data,
                             size_t len, OrtSession **out) {
	if (path != NULL) {
		return FN(CreateSession)(env, path, opts, out);
	}
	return FN(CreateSessionFromArray)(env, data, len, opts, out);
}

void qp_session_release(OrtSession *s) { FN(ReleaseSession)(s); }

OrtStatus *qp_io_count(OrtSession *s, int output, size_t *n) {
	return output ? FN(SessionGetOutputCount)(s, n) : FN(SessionGetInputCount)(s, n);
}

// copy_and_free copies an allocator-owned string to malloc'ed memory.
static OrtStatus *copy_and_free(OrtAllocator *alloc, char *s, char **out) {
	*out = strdup(s);
	OrtStatus *st = FN(AllocatorFree)(alloc, s);
	if (st == NULL && *out == NULL) {
		st = FN(CreateStatus)(QP_ORT_FAIL, "out of memory");
	}
	return st;
}

static OrtStatus *type_info(OrtSession *s, int output, size_t i, OrtTypeInfo **ti) {
	return output ? FN(SessionGetOutputTypeInfo)(s, i, ti) : FN(SessionGetInputTypeInfo)(s, i, ti);
}

OrtStatus *qp_io_info(OrtSession *s, int output, size_t i, char **name, unsigned int *onnx_type,
                      unsigned int *elem, size_t *rank) {
	OrtAllocator *alloc;
	OrtStatus *st = FN(GetAllocatorWithDefaultOptions)(&alloc);
	if (st != NULL) {
		return st;
	}
	char *n = NULL;
	st = output ? FN(SessionGetOutputName)(s, i, alloc, &n) : FN(SessionGetInputName)(s, i, alloc, &n);
	if (st != NULL) {
		return st;
	}
	st = copy_and_free(alloc, n, name);
	if (st != NULL) {
		return st;
	}
	OrtTypeInfo *ti;
	st = type_info(s, output, i, &ti);
	if (st != NULL) {
		return st;
	}
	*elem = 0;
	*rank = 0;
	st = FN(GetOnnxTypeFromTypeInfo)(ti, onnx_type);
	if (st == NULL && *onnx_type == QP_ONNX_TYPE_TENSOR) {
		const OrtTensorTypeAndShapeInfo *tsi;
		st = FN(CastTypeInfoToTensorInfo)(ti, &tsi);
		if (st == NULL) {
			st = FN(GetTensorElementType)(tsi, elem);
		}
		if (st == NULL) {
			st = FN(GetDimensionsCount)(tsi, rank);
		}
	}
	FN(ReleaseTypeInfo)(ti);
	return st;
}

// qp_io_dims fills dims and returns the symbolic dimension names as rank
// NUL-terminated strings back to back in a malloc'ed block.
OrtStatus *qp_io_dims(OrtSession *s, int output, size_t i, int64_t *dims, size_t rank,
                      char **sym, size_t *symlen) {
	*sym = NULL;
	*symlen = 0;
	OrtTypeInfo *ti;
	OrtStatus *st = type_info(s, output, i, &ti);
	if (st != NULL) {
		return st;
	}
	const OrtTensorTypeAndShapeInfo *tsi;
	const char **names = calloc(rank ? rank : 1, sizeof(char *));
	if (names == NULL) {
		FN(ReleaseTypeInfo)(ti);
		return FN(CreateStatus)(QP_ORT_FAIL, "out of memory");
	}
	st = FN(CastTypeInfoToTensorInfo)(ti, &tsi);
	if (st == NULL) {
		st = FN(GetDimensions)(tsi, dims, rank);
	}
	if (st == NULL) {
		st = FN(GetSymbolicDimensions)(tsi, names, rank);
	}
	if (st == NULL) {
		size_t total = 0;
		for (size_t k = 0; k < rank; k++) {
			total += strlen(names[k] ? names[k] : "") + 1;
		}
		char *blob = malloc(total ? total : 1);
		if (blob == NULL) {
			free(names);
			FN(ReleaseTypeInfo)(ti);
			return FN(CreateStatus)(QP_ORT_FAIL, "out of memory");
		}
		char *p = blob;
		for (size_t k = 0; k < rank; k++) {
			const char *nm = names[k] ? names[k] : "";
			size_t l = strlen(nm) + 1;
			memcpy(p, nm, l);
			p += l;
		}
		*sym = blob;
		*symlen = total;
	}
	free(names);
	FN(ReleaseTypeInfo)(ti);
	return st;
}

OrtStatus *qp_tensor(void *data, size_t bytes, const int64_t *shape, size_t rank,
                     unsigned int elem, OrtValue **out) {
	return FN(CreateTensorWithDataAsOrtValue)(cpu_mem, data, bytes, shape, rank, elem, out);
}

void qp_value_release(OrtValue *v) { FN(ReleaseValue)(v); }

OrtStatus *qp_value_info(OrtValue *v, unsigned int *elem, size_t *rank, void **data) {
	OrtTensorTypeAndShapeInfo *tsi;
	OrtStatus *st = FN(GetTensorTypeAndShape)(v, &tsi);
	if (st != NULL) {
		return st;
	}
	st = FN(GetTensorElementType)(tsi, elem);
	if (st == NULL) {
		st = FN(GetDimensionsCount)(tsi, rank);
	}
	FN(ReleaseTensorTypeAndShapeInfo)(tsi);
	if (st == NULL) {
		st = FN(GetTensorMutableData)(v, data);
	}
	return st;
}

OrtStatus *qp_value_dims(OrtValue *v, int64_t *dims, size_t rank) {
	OrtTensorTypeAndShapeInfo *tsi;
	OrtStatus *st = FN(GetTensorTypeAndShape)(v, &tsi);
	if (st != NULL) {
		return st;
	}
	st = FN(GetDimensions)(tsi, dims, rank);
	FN(ReleaseTensorTypeAndShapeInfo)(tsi);
	return st;
}

OrtStatus *qp_runopts(OrtRunOptions **out) { return FN(CreateRunOptions)(out); }

OrtStatus *qp_runopts_terminate(OrtRunOptions *o, int on) {
	return on ? FN(RunOptionsSetTerminate)(o) : FN(RunOptionsUnsetTerminate)(o);
}

void qp_runopts_release(OrtRunOptions *o) { FN(ReleaseRunOptions)(o); }

OrtStatus *qp_run(OrtSession *s, OrtRunOptions *o, char **in_names, OrtValue **ins, size_t nin,
                  char **out_names, OrtValue **outs, size_t nout) {
	return FN(Run)(s, o, (const char *const *)in_names, (const OrtValue *const *)ins, nin,
	               (const char *const *)out_names, nout, outs);
}

OrtStatus *qp_end_profiling(OrtSession *s, char **path) {
	*path = NULL;
	OrtAllocator *alloc;
	OrtStatus *st = FN(GetAllocatorWithDefaultOptions)(&alloc);
	if (st != NULL) {
		return st;
	}
	char *p = NULL;
	st = FN(SessionEndProfiling)(s, alloc, &p);
	if (st != NULL || p == NULL) {
		return st;
	}
	return copy_and_free(alloc, p, path);
}

// blob is a growable buffer of NUL-terminated strings; failed is set when
// memory ran out (what was added before stays).
typedef struct {
	char *p;
	size_t len, cap;
	int failed;
} blob;

static void blob_add(blob *b, const char *s) {
	if (s == NULL) {
		s = "";
	}
	size_t l = strlen(s) + 1;
	if (b->failed) {
		return;
	}
	if (b->len + l > b->cap) {
		size_t c = b->cap ? b->cap * 2 : 1024;
		while (c < b->len + l) {
			c *= 2;
		}
		char *p = realloc(b->p, c);
		if (p == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = c;
	}
	memcpy(b->p + b->len, s, l);
	b->len += l;
}

// blob_done hands the block to the caller, or fails if memory ran out.
static OrtStatus *blob_done(blob *b, char **out, size_t *len) {
	if (b->failed) {
		free(b->p);
		return FN(CreateStatus)(QP_ORT_FAIL, "out of memory");
	}
	*out = b->p;
	*len = b->len;
	return NULL;
}

// qp_assignment lists, for every node the partitioner assigned, three strings:
// execution provider, node name, operator type.
OrtStatus *qp_assignment(OrtSession *s, char **out, size_t *len) {
	*out = NULL;
	*len = 0;
	const OrtEpAssignedSubgraph *const *subs;
	size_t nsub;
	OrtStatus *st = FN(Session_GetEpGraphAssignmentInfo)(s, &subs, &nsub);
	if (st != NULL) {
		return st;
	}
	blob b = {0};
	for (size_t i = 0; i < nsub && st == NULL; i++) {
		const char *ep;
		const OrtEpAssignedNode *const *nodes;
		size_t nn;
		st = FN(EpAssignedSubgraph_GetEpName)(subs[i], &ep);
		if (st == NULL) {
			st = FN(EpAssignedSubgraph_GetNodes)(subs[i], &nodes, &nn);
		}
		for (size_t k = 0; st == NULL && k < nn; k++) {
			const char *name, *op;
			st = FN(EpAssignedNode_GetName)(nodes[k], &name);
			if (st == NULL) {
				st = FN(EpAssignedNode_GetOperatorType)(nodes[k], &op);
			}
			if (st == NULL) {
				blob_add(&b, ep);
				blob_add(&b, name);
				blob_add(&b, op);
			}
		}
	}
	if (st != NULL) {
		free(b.p);
		return st;
	}
	return blob_done(&b, out, len);
}

OrtStatus *qp_has_config(OrtSessionOptions *o, const char *key, int *out) {
	return FN(HasSessionConfigEntry)(o, key, out);
}

OrtStatus *qp_sessopts_create(OrtSessionOptions **out) {
	*out = NULL;
	return FN(CreateSessionOptions)(out);
}

void qp_sessopts_release(OrtSessionOptions *o) {
	if (o != NULL) {
		FN(ReleaseSessionOptions)(o);
	}
}

// qp_sessopts_threads sets the intra-op pool (when intra > 0) and the
// inter-op pool (when inter > 0), switching to parallel execution, the only
// mode that uses it, when inter > 1.
OrtStatus *qp_sessopts_threads(OrtSessionOptions *o, int intra, int inter) {
	OrtStatus *st;
	if (intra > 0 && (st = FN(SetIntraOpNumThreads)(o, intra)) != NULL) {
		return st;
	}
	if (inter > 0 && (st = FN(SetInterOpNumThreads)(o, inter)) != NULL) {
		return st;
	}
	if (inter > 1) {
		return FN(SetSessionExecutionMode)(o, QP_ORT_PARALLEL);
	}
	return NULL;
}

OrtStatus *qp_sessopts_optlevel(OrtSessionOptions *o, unsigned int level) {
	return FN(SetSessionGraphOptimizationLevel)(o, level);
}

OrtStatus *qp_sessopts_config(OrtSessionOptions *o, const char *key, const char *value) {
	return FN(AddSessionConfigEntry)(o, key, value);
}

OrtStatus *qp_sessopts_profiling(OrtSessionOptions *o, const char *prefix) {
	return FN(EnableProfiling)(o, prefix);
}

// qp_sessopts_cuda appends the CUDA execution provider built into GPU
// releases of ONNX Runtime, with its default options (device 0).
OrtStatus *qp_sessopts_cuda(OrtSessionOptions *o) {
	OrtCUDAProviderOptionsV2 *cuda = NULL;
	OrtStatus *st = FN(CreateCUDAProviderOptions)(&cuda);
	if (st != NULL) {
		return st;
	}
	st = FN(SessionOptionsAppendExecutionProvider_CUDA_V2)(o, cuda);
	FN(ReleaseCUDAProviderOptions)(cuda);
	return st;
}

OrtStatus *qp_register_ep(const char *name, const char *path) {
	return FN(RegisterExecutionProviderLibrary)(env, name, path);
}

// qp_ep_devices lists the OrtEpDevices of the environment, three strings
// each: execution provider name, vendor, hardware type ("cpu", "gpu", "npu").
OrtStatus *qp_ep_devices(char **out, size_t *len, size_t *n) {
	*out = NULL;
	*len = 0;
	const OrtEpDevice *const *devs;
	OrtStatus *st = FN(GetEpDevices)(env, &devs, n);
	if (st != NULL) {
		return st;
	}
	blob b = {0};
	for (size_t i = 0; i < *n; i++) {
		blob_add(&b, FN(EpDevice_EpName)(devs[i]));
		blob_add(&b, FN(EpDevice_EpVendor)(devs[i]));
		const OrtHardwareDevice *hw = FN(EpDevice_Device)(devs[i]);
		unsigned int t = hw != NULL ? FN(HardwareDevice_Type)(hw) : 99;
		blob_add(&b, t == QP_ORT_HW_CPU ? "cpu" : t == QP_ORT_HW_GPU ? "gpu" : t == QP_ORT_HW_NPU ? "npu" : "unknown");
	}
	return blob_done(&b, out, len);
}

// qp_append_ep appends the execution provider of the index-th OrtEpDevice
// (in GetEpDevices order) for that one device, with no provider options.
OrtStatus *qp_append_ep(OrtSessionOptions *o, size_t index) {
	const OrtEpDevice *const *devs;
	size_t n;
	OrtStatus *st = FN(GetEpDevices)(env, &devs, &n);
	if (st != NULL) {
		return st;
	}
	if (index >= n) {
		// The Go side holds a lock between listing and appending, so the
		// list cannot shrink in between; stay safe anyway.
		return FN(CreateStatus)(QP_ORT_INVALID_ARGUMENT, "execution provider device index out of range");
	}
	const OrtEpDevice *one[1] = {devs[index]};
	return FN(SessionOptionsAppendExecutionProvider_V2)(o, env, one, 1, NULL, NULL, 0);
}
