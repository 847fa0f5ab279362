//go:build cgo

package ort

/*
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"os"
	"sync"
	"unsafe"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/quantpack/quantpack/verify"
)

// Config keys of ONNX Runtime sessions (onnxruntime_session_options_config_keys.h).
const (
	keyAssignmentInfo   = "session.record_ep_graph_assignment_info"
	keyExternalDataPath = "session.model_external_initializers_file_folder_path"
)

// loaded records the library this process loaded. ONNX Runtime keeps
// process-wide state (one OrtEnv), so a process loads one library once.
var loaded struct {
	sync.Mutex
	path string
	info os.FileInfo
}

// Init loads the ONNX Runtime shared library at libPath and creates its
// environment. An empty libPath means LibraryPath(""), or whatever library
// is already loaded. Init is idempotent and safe for concurrent callers:
// later calls with the same file return nil, calls with a different file
// fail, since one process holds one ONNX Runtime. A missing or
// unloadable library gives an error wrapping ErrUnavailable that says how to
// fix it.
func Init(libPath string) error {
	loaded.Lock()
	defer loaded.Unlock()
	if libPath == "" {
		if loaded.path != "" {
			return nil
		}
		p, err := LibraryPath("")
		if err != nil {
			return err
		}
		libPath = p
	}
	if _, err := existing(libPath, "Init"); err != nil {
		return err
	}
	st, _ := os.Stat(libPath)
	if loaded.path != "" {
		if os.SameFile(st, loaded.info) {
			return nil
		}
		return errorf(ErrUnavailable, "load", libPath, "", "ONNX Runtime is already loaded from %s; a process loads one library", loaded.path)
	}
	if !onnx.IsInitialized() {
		onnx.SetSharedLibraryPath(libPath)
		// The process-wide OrtEnv logs to stderr, in colour, lines such as
		// the failed load of the CUDA provider that precede our own message
		// saying the same; errors come back as statuses, so only fatal
		// lines are logged.
		if err := onnx.InitializeEnvironment(onnx.WithLogLevelFatal()); err != nil {
			return errorf(ErrUnavailable, "load", libPath, "", "%v; %s", err, fixHint)
		}
	}
	if err := loadAPI(libPath); err != nil {
		onnx.DestroyEnvironment()
		return errorf(ErrUnavailable, "load", libPath, "", "%v; %s", err, fixHint)
	}
	loaded.path, loaded.info = libPath, st
	return nil
}

// ensureInit loads the library from the default places unless Init ran.
func ensureInit() error {
	loaded.Lock()
	done := loaded.path != ""
	loaded.Unlock()
	if done {
		return nil
	}
	return Init("")
}

// Version returns the loaded ONNX Runtime's version ("1.30.0"), or "" before
// Init.
func Version() string {
	loaded.Lock()
	defer loaded.Unlock()
	if loaded.path == "" {
		return ""
	}
	return C.GoString(C.qp_version())
}

// Session is one loaded model. Its methods are safe for concurrent use;
// Runs of one Session take turns (use a Session per goroutine to run in
// parallel).
type Session struct {
	mu       sync.Mutex
	h        *C.OrtSession
	runOpts  *C.OrtRunOptions
	source   string // model path, or "<bytes>"
	opt      Options
	inputs   []verify.IOInfo
	outputs  []verify.IOInfo
	inSym    [][]string // symbolic dimension names, "" where none
	outSym   [][]string
	inNames  []*C.char // C copies of the names, for Run
	outNames []*C.char
	order    []int // scratch for Run: index of each model input in the caller's slice
	plans    []*plan
	profiled bool
	profile  string // profile file, once profiling ended
	closed   bool
}

// Open loads the model at modelPath. External data files are found next to
// it. Open loads the library from the default places (LibraryPath) unless
// Init ran before.
func Open(modelPath string, opt Options) (*Session, error) {
	if _, err := os.Stat(modelPath); err != nil {
		return nil, errorf(ErrModel, "open", modelPath, "", "%v", err)
	}
	return open(modelPath, nil, opt)
}

// OpenBytes loads a model held in memory. A model with external data needs
// opt.ExternalDataDir.
func OpenBytes(model []byte, opt Options) (*Session, error) {
	if len(model) == 0 {
		return nil, errorf(ErrModel, "open", "<bytes>", "", "empty model")
	}
	return open("", model, opt)
}

func open(path string, data []byte, opt Options) (*Session, error) {
	opt, err := opt.normalized()
	if err != nil {
		return nil, err
	}
	if err := ensureInit(); err != nil {
		return nil, err
	}
	source := path
	if data != nil {
		source = "<bytes>"
	}
	so, err := newSessionOptions()
	if err != nil {
		return nil, errorf(ErrRun, "open", source, "", "session options: %v", err)
	}
	defer so.Destroy()
	if err := configure(so, opt, data != nil, source); err != nil {
		return nil, err
	}
	h, err := createSession(so, path, data, opt, source)
	if err != nil {
		return nil, err
	}
	s := &Session{h: h, source: source, opt: opt, profiled: opt.ProfilePrefix != ""}
	if err := s.describe(); err != nil {
		s.release()
		return nil, err
	}
	if st := takeStatus(C.qp_runopts(&s.runOpts)); st != nil {
		s.release()
		return nil, errorf(ErrRun, "open", source, "", "run options: %v", st)
	}
	return s, nil
}

// configure applies opt to the session options.
func configure(so *sessionOptions, opt Options, fromBytes bool, source string) error {
	fail := func(what string, err error) error {
		return errorf(ErrRun, "open", source, "", "%s: %v", what, err)
	}
	if err := so.threads(opt.IntraOpThreads, opt.InterOpThreads); err != nil {
		return fail("threads", err)
	}
	level := map[int]C.uint{
		OptDisable:  C.QP_ORT_DISABLE_ALL,
		OptBasic:    C.QP_ORT_ENABLE_BASIC,
		OptExtended: C.QP_ORT_ENABLE_EXTENDED,
		OptAll:      C.QP_ORT_ENABLE_ALL,
	}[opt.OptLevel]
	if err := so.optLevel(int(level)); err != nil {
		return fail("optimization level", err)
	}
	// Recording the partitioner's assignment is cheap and lets Placement
	// answer without profiling.
	if err := so.config(keyAssignmentInfo, "1"); err != nil {
		return fail(keyAssignmentInfo, err)
	}
	if fromBytes && opt.ExternalDataDir != "" {
		if err := so.config(keyExternalDataPath, opt.ExternalDataDir); err != nil {
			return fail(keyExternalDataPath, err)
		}
	}
	if opt.ProfilePrefix != "" {
		if err := so.profiling(opt.ProfilePrefix); err != nil {
			return fail("profiling", err)
		}
	}
	if opt.Device != DeviceCUDA {
		return nil
	}
	if opt.EPLibrary != "" {
		return appendPluginEP(so, opt.EPLibrary, source)
	}
	if err := so.cuda(); err != nil {
		return errorf(ErrCUDAUnavailable, "open", source, "", "%v", err)
	}
	return nil
}

// createSession creates the OrtSession through the C API. (onnxruntime_go's
// sessions need every input and output name before they exist, which would
// load the model twice.)
func createSession(so *sessionOptions, path string, data []byte, opt Options, source string) (*C.OrtSession, error) {
	opts := so.h
	var h *C.OrtSession
	var st *status
	if data != nil {
		st = takeStatus(C.qp_session_create(opts, nil, unsafe.Pointer(&data[0]), C.size_t(len(data)), &h))
	} else {
		cpath := C.CString(path)
		st = takeStatus(C.qp_session_create(opts, cpath, nil, 0, &h))
		C.free(unsafe.Pointer(cpath))
	}
	if st == nil {
		return h, nil
	}
	kind := ErrRun
	switch st.code {
	case codeNotImplemented:
		kind = ErrUnsupported
	case codeFail, codeInvalidArg, codeNoSuchFile, codeNoModel, codeInvalidProto, codeInvalidGraph, codeModelLoaded:
		kind = ErrModel
	case codeEPFail:
		if opt.Device == DeviceCUDA {
			kind = ErrCUDAUnavailable
		}
	}
	return nil, errorf(kind, "open", source, "", "%v", st)
}

// Options returns the options the session was created with, defaults filled
// in (OptLevel 0 reads OptAll; thread counts of 0 mean ONNX Runtime's
// default).
func (s *Session) Options() Options { return s.opt }

// Inputs describes the model's inputs; -1 marks a dynamic dimension.
func (s *Session) Inputs() []verify.IOInfo { return cloneInfo(s.inputs) }

// Outputs describes the model's outputs; -1 marks a dynamic dimension.
func (s *Session) Outputs() []verify.IOInfo { return cloneInfo(s.outputs) }

func cloneInfo(in []verify.IOInfo) []verify.IOInfo {
	out := make([]verify.IOInfo, len(in))
	for i, x := range in {
		out[i] = verify.IOInfo{Name: x.Name, DType: x.DType, Shape: append([]int64(nil), x.Shape...)}
	}
	return out
}

// Close ends profiling (so ProfileFile names the written file) and frees
// the session. Closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var err error
	if s.profiled && s.profile == "" {
		_, err = s.endProfiling()
	}
	s.release()
	return err
}

// release frees everything; the caller holds mu or owns s alone.
func (s *Session) release() {
	for _, p := range s.plans {
		p.free()
	}
	s.plans = nil
	if s.runOpts != nil {
		C.qp_runopts_release(s.runOpts)
		s.runOpts = nil
	}
	if s.h != nil {
		C.qp_session_release(s.h)
		s.h = nil
	}
	for _, n := range append(s.inNames, s.outNames...) {
		C.free(unsafe.Pointer(n))
	}
	s.inNames, s.outNames = nil, nil
	s.closed = true
}

var _ verify.Runner = (*Session)(nil)
