//go:build cgo

package ort

/*
#cgo LDFLAGS: -ldl
// The Makefile turns deprecation warnings off for cgo packages (go-nvml's
// wrappers of NVML functions CUDA 13 deprecated); our own C keeps them.
#cgo CFLAGS: -Wdeprecated-declarations
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// ONNX Runtime error codes (OrtErrorCode).
const (
	codeOK             = 0
	codeFail           = 1
	codeInvalidArg     = 2
	codeNoSuchFile     = 3
	codeNoModel        = 4
	codeEngineError    = 5
	codeRuntimeExc     = 6
	codeInvalidProto   = 7
	codeModelLoaded    = 8
	codeNotImplemented = 9
	codeInvalidGraph   = 10
	codeEPFail         = 11
)

var codeNames = [...]string{"OK", "FAIL", "INVALID_ARGUMENT", "NO_SUCHFILE", "NO_MODEL", "ENGINE_ERROR",
	"RUNTIME_EXCEPTION", "INVALID_PROTOBUF", "MODEL_LOADED", "NOT_IMPLEMENTED", "INVALID_GRAPH", "EP_FAIL",
	"MODEL_LOAD_CANCELED", "MODEL_REQUIRES_COMPILATION", "NOT_FOUND"}

// status is a failed OrtStatus, copied to Go.
type status struct {
	code uint
	msg  string
}

func (s *status) Error() string {
	name := fmt.Sprint(s.code)
	if s.code < uint(len(codeNames)) {
		name = codeNames[s.code]
	}
	return name + ": " + s.msg
}

// takeStatus converts and releases st; nil stays nil.
func takeStatus(st *C.OrtStatus) *status {
	if st == nil {
		return nil
	}
	s := &status{code: uint(C.qp_status_code(st)), msg: C.GoString(C.qp_status_message(st))}
	C.qp_status_release(st)
	return s
}

// takeString converts and frees a malloc'ed C string.
func takeString(p *C.char) string {
	if p == nil {
		return ""
	}
	s := C.GoString(p)
	C.free(unsafe.Pointer(p))
	return s
}

// takeStrings splits and frees a block of n NUL-terminated strings.
func takeStrings(p *C.char, size C.size_t) []string {
	if p == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(p))
	b := C.GoBytes(unsafe.Pointer(p), C.int(size))
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		out = append(out, string(b[:i]))
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// loadAPI takes the C API table of the library onnxruntime_go has loaded.
func loadAPI(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var buf [512]C.char
	if C.qp_load(cpath, &buf[0], C.size_t(len(buf))) != 0 {
		return fmt.Errorf("%s", C.GoString(&buf[0]))
	}
	return nil
}

// sessionOptions is an OrtSessionOptions made through our own function
// table. onnxruntime_go's SessionOptions keeps its handle in an unexported
// field, and the session is created here, so the options are built here
// too: no handle crosses between the two bindings.
type sessionOptions struct{ h *C.OrtSessionOptions }

func newSessionOptions() (*sessionOptions, error) {
	var h *C.OrtSessionOptions
	if st := takeStatus(C.qp_sessopts_create(&h)); st != nil {
		return nil, st
	}
	return &sessionOptions{h: h}, nil
}

func (o *sessionOptions) Destroy() {
	C.qp_sessopts_release(o.h)
	o.h = nil
}

// status converts a returned OrtStatus to an error (nil for success).
func statusErr(st *C.OrtStatus) error {
	if s := takeStatus(st); s != nil {
		return s
	}
	return nil
}

func (o *sessionOptions) threads(intra, inter int) error {
	return statusErr(C.qp_sessopts_threads(o.h, C.int(intra), C.int(inter)))
}

func (o *sessionOptions) optLevel(level int) error {
	return statusErr(C.qp_sessopts_optlevel(o.h, C.uint(level)))
}

func (o *sessionOptions) config(key, value string) error {
	ck, cv := C.CString(key), C.CString(value)
	defer C.free(unsafe.Pointer(ck))
	defer C.free(unsafe.Pointer(cv))
	return statusErr(C.qp_sessopts_config(o.h, ck, cv))
}

func (o *sessionOptions) profiling(prefix string) error {
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	return statusErr(C.qp_sessopts_profiling(o.h, cp))
}

func (o *sessionOptions) cuda() error { return statusErr(C.qp_sessopts_cuda(o.h)) }

// hasConfigEntry asks ONNX Runtime whether opts has key set.
func hasConfigEntry(opts *C.OrtSessionOptions, key string) (bool, error) {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	var out C.int
	if st := takeStatus(C.qp_has_config(opts, ckey, &out)); st != nil {
		return false, st
	}
	return out != 0, nil
}
