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
	"reflect"
	"unsafe"

	onnx "github.com/yalue/onnxruntime_go"
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

// sessionOptionsHandle returns the OrtSessionOptions* inside an
// onnxruntime_go SessionOptions. The binding keeps it in an unexported
// field and offers no accessor, yet plugin execution providers
// (SessionOptionsAppendExecutionProvider_V2) need it. The field is read
// through reflect, after checking the struct still has the one pointer
// field of v1.27.0; a different layout gives an error, not a crash, and
// TestSessionOptionsHandle checks the pointer round-trips a config entry.
func sessionOptionsHandle(o *onnx.SessionOptions) (*C.OrtSessionOptions, error) {
	v := reflect.ValueOf(o).Elem()
	t := v.Type()
	if t.NumField() != 1 || t.Field(0).Name != "o" || t.Field(0).Type.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("onnxruntime_go.SessionOptions changed layout (%d fields); update verify/ort for this binding version", t.NumField())
	}
	f := v.Field(0)
	if f.IsNil() {
		return nil, fmt.Errorf("onnxruntime_go.SessionOptions holds no OrtSessionOptions")
	}
	return (*C.OrtSessionOptions)(f.UnsafePointer()), nil
}

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
