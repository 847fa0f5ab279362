//go:build cgo

package ort

/*
#include "capi.h"
*/
import "C"

import (
	"os"

	"github.com/quantpack/quantpack/verify"
)

// EndProfiling stops the profiler and returns the JSON file ONNX Runtime
// wrote (PREFIX_<date>_<time>.json). Later calls return the same path.
// It fails with ErrOptions when the session was opened without
// Options.ProfilePrefix.
func (s *Session) EndProfiling() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.profile == "" {
		return "", errorf(ErrClosed, "profile", s.source, "", "")
	}
	return s.endProfiling()
}

func (s *Session) endProfiling() (string, error) {
	if !s.profiled {
		return "", errorf(ErrOptions, "profile", s.source, "", "profiling was not enabled (Options.ProfilePrefix)")
	}
	if s.profile != "" {
		return s.profile, nil
	}
	var p *C.char
	if st := takeStatus(C.qp_end_profiling(s.h, &p)); st != nil {
		return "", errorf(ErrRun, "profile", s.source, "", "%v", st)
	}
	s.profile = takeString(p)
	return s.profile, nil
}

// ProfileFile returns the profile written by EndProfiling, Placement or
// Close, or "" while profiling goes on or when it was not enabled.
func (s *Session) ProfileFile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profile
}

// Placement reports which execution provider runs each node.
//
// With profiling enabled it ends profiling and reads the profile: every
// node event (cat "Node") names its provider in args.provider, so this is
// what actually ran, after all graph optimizations. Otherwise, or when the
// profile holds no node yet (no Run happened), it asks ONNX Runtime for the
// partitioner's assignment (Session_GetEpGraphAssignmentInfo, recorded
// because every session sets "session.record_ep_graph_assignment_info"),
// which ONNX Runtime takes after basic graph optimizations, so nodes that
// later fusions merge still appear there under their own names.
//
// On a session that asked for CUDA, nodes on CPUExecutionProvider count as
// FellBackToCPU.
func (s *Session) Placement() (verify.Placement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return verify.Placement{}, errorf(ErrClosed, "placement", s.source, "", "")
	}
	if s.profiled {
		path, err := s.endProfiling()
		if err != nil {
			return verify.Placement{}, err
		}
		f, err := os.Open(path)
		if err != nil {
			return verify.Placement{}, errorf(ErrRun, "placement", path, "", "%v", err)
		}
		nodes, err := parseProfile(f)
		f.Close()
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Path = path
			}
			return verify.Placement{}, err
		}
		if len(nodes) > 0 {
			return summarize(nodes, s.opt.Device), nil
		}
	}
	nodes, err := s.assignment()
	if err != nil {
		return verify.Placement{}, err
	}
	return summarize(nodes, s.opt.Device), nil
}

// assignment reads the partitioner's node assignment.
func (s *Session) assignment() ([]nodePlacement, error) {
	var blob *C.char
	var n C.size_t
	if st := takeStatus(C.qp_assignment(s.h, &blob, &n)); st != nil {
		return nil, errorf(ErrRun, "placement", s.source, "", "assignment info: %v", st)
	}
	f := takeStrings(blob, n)
	nodes := make([]nodePlacement, 0, len(f)/3)
	for i := 0; i+2 < len(f); i += 3 {
		nodes = append(nodes, nodePlacement{provider: f[i], name: f[i+1], op: f[i+2]})
	}
	return nodes, nil
}
