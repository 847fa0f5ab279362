//go:build cgo

package ort

/*
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// Plugin execution providers (ORT ≥ 1.22): a library is registered once per
// process with RegisterExecutionProviderLibrary; it adds OrtEpDevices (one
// per device it can drive) to the environment; a session takes one of them
// with SessionOptionsAppendExecutionProvider_V2. onnxruntime_go wraps only
// the registration and keeps its OrtEnv pointer private, so all three calls
// go through capi.c, on the same process-wide OrtEnv (CreateEnv returns
// ONNX Runtime's single instance).

// epDevice is one OrtEpDevice: execution provider, vendor, hardware type.
type epDevice struct {
	ep, vendor, hw string
}

func (d epDevice) String() string { return d.ep + " (" + d.vendor + ", " + d.hw + ")" }

// epRegistry remembers which libraries are registered and which execution
// providers each brought. Its lock also keeps the device list stable
// between listing devices and appending one by index.
var epRegistry struct {
	sync.Mutex
	libs map[string]map[string]bool // absolute path → names of its execution providers
}

// listEPDevices returns the environment's OrtEpDevices in GetEpDevices order.
func listEPDevices() ([]epDevice, error) {
	var blob *C.char
	var size, n C.size_t
	if st := takeStatus(C.qp_ep_devices(&blob, &size, &n)); st != nil {
		return nil, st
	}
	f := takeStrings(blob, size)
	devs := make([]epDevice, 0, n)
	for i := 0; i+2 < len(f); i += 3 {
		devs = append(devs, epDevice{ep: f[i], vendor: f[i+1], hw: f[i+2]})
	}
	return devs, nil
}

// registerEP registers the library at path unless done before and returns
// the names of the execution providers it brought. The caller holds
// epRegistry.
func registerEP(path string) (map[string]bool, error) {
	if eps, ok := epRegistry.libs[path]; ok {
		return eps, nil
	}
	before, err := listEPDevices()
	if err != nil {
		return nil, err
	}
	name := C.CString(fmt.Sprintf("quantpack-ep-%d", len(epRegistry.libs)))
	cpath := C.CString(path)
	st := takeStatus(C.qp_register_ep(name, cpath))
	C.free(unsafe.Pointer(name))
	C.free(unsafe.Pointer(cpath))
	if st != nil {
		return nil, st
	}
	after, err := listEPDevices()
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool)
	for _, d := range before {
		known[d.ep] = true
	}
	eps := make(map[string]bool)
	for _, d := range after {
		if !known[d.ep] {
			eps[d.ep] = true
		}
	}
	if epRegistry.libs == nil {
		epRegistry.libs = make(map[string]map[string]bool)
	}
	epRegistry.libs[path] = eps
	return eps, nil
}

// appendEPDevice appends to opts the first device whose execution provider
// is accepted by want and whose hardware type is hw.
func appendEPDevice(so *sessionOptions, want func(ep string) bool, hw string) (epDevice, error) {
	opts := so.h
	devs, err := listEPDevices()
	if err != nil {
		return epDevice{}, err
	}
	for i, d := range devs {
		if want(d.ep) && d.hw == hw {
			if st := takeStatus(C.qp_append_ep(opts, C.size_t(i))); st != nil {
				return d, st
			}
			return d, nil
		}
	}
	list := make([]string, len(devs))
	for i, d := range devs {
		list[i] = d.String()
	}
	return epDevice{}, errNoDevice{hw: hw, have: strings.Join(list, ", ")}
}

type errNoDevice struct{ hw, have string }

func (e errNoDevice) Error() string {
	return fmt.Sprintf("no %s device offered (devices: %s)", strings.ToUpper(e.hw), e.have)
}

// appendPluginEP registers the plugin library at path and appends its GPU
// device to so.
func appendPluginEP(so *sessionOptions, path, source string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return errorf(ErrUnavailable, "register-ep", path, "", "%v", err)
	}
	if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() {
		detail := "not a regular file"
		if err != nil {
			detail = err.Error()
		}
		return errorf(ErrUnavailable, "register-ep", abs, "", "execution provider library: %s", detail)
	}
	epRegistry.Lock()
	defer epRegistry.Unlock()
	eps, err := registerEP(abs)
	if err != nil {
		return errorf(ErrUnavailable, "register-ep", abs, "", "%v", err)
	}
	if len(eps) == 0 {
		return errorf(ErrCUDAUnavailable, "register-ep", abs, "", "the library registered but added no execution provider device (no usable GPU?)")
	}
	_, err = appendEPDevice(so, func(ep string) bool { return eps[ep] }, "gpu")
	if err != nil {
		return errorf(ErrCUDAUnavailable, "open", source, "", "execution provider library %s: %v", abs, err)
	}
	return nil
}
