package ort

import "github.com/quantpack/quantpack/verify"

// Applied reports the settings the session runs with, for the report's
// provenance (verify.AppliedReporter): the device ("" means DeviceCPU), the
// plugin library, the loaded runtime's version and the intra-op threads set
// (0: ONNX Runtime's default).
func (s *Session) Applied() verify.Applied {
	o := s.Options()
	dev := o.Device
	if dev == "" {
		dev = DeviceCPU
	}
	return verify.Applied{Device: dev, EPLibrary: o.EPLibrary, ORTVersion: Version(), Threads: o.IntraOpThreads}
}

var _ verify.AppliedReporter = (*Session)(nil)
