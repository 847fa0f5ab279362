package ort

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// profileSample follows the layout ONNX Runtime 1.30 writes (one event per
// line, Session and Node categories, args as in a real profile), plus the
// fence events older releases add around each kernel.
const profileSample = `[
{"cat" : "Session","pid" :7,"tid" :7,"dur" :420,"ts" :3,"ph" : "X","name" :"model_loading_array","args" : {}},
{"cat" : "Session","pid" :7,"tid" :7,"dur" :900,"ts" :430,"ph" : "X","name" :"session_initialization","args" : {}},
{"cat" : "Node","pid" :7,"tid" :7,"dur" :0,"ts" :1400,"ph" : "X","name" :"matmul_fence_before","args" : {"op_name" : "MatMul"}},
{"cat" : "Node","pid" :7,"tid" :7,"dur" :32,"ts" :1401,"ph" : "X","name" :"matmul_kernel_time","args" : {"mem_bytes_requested_in_use" : "332","op_name" : "MatMul","mem_in_use_delta" : "0","activation_size" : "40","provider" : "CPUExecutionProvider","input_type_shape" : [{"float":[2,5]},{"float":[3]}],"output_type_shape" : [{"float":[2,3]}],"node_index" : "3","thread_scheduling_stats" : {"main_thread": {"thread_pool_name": "session-1-intra-op", "thread_id": "140684729943872", "block_size": [], "core": -1, "Distribution": 0, "Run": 0, "Wait": 0}, "sub_threads": {"140683419576000": {"num_run": 0, "core": -1}}},"mem_in_use_peak" : "392"}},
{"cat" : "Node","pid" :7,"tid" :7,"dur" :0,"ts" :1414,"ph" : "X","name" :"matmul_fence_after","args" : {"op_name" : "MatMul"}},
{"cat" : "Node","pid" :7,"tid" :7,"dur" :3,"ts" :1415,"ph" : "X","name" :"add_kernel_time","args" : {"op_name" : "Add","provider" : "CUDAExecutionProvider"}},
{"cat" : "Session","pid" :7,"tid" :7,"dur" :30,"ts" :1390,"ph" : "X","name" :"SequentialExecutor::Execute","args" : {}},
{"cat" : "Node","pid" :7,"tid" :7,"dur" :11,"ts" :2401,"ph" : "X","name" :"matmul_kernel_time","args" : {"op_name" : "MatMul","provider" : "CPUExecutionProvider"}},
{"cat" : "Session","pid" :7,"tid" :7,"dur" :35,"ts" :1380,"ph" : "X","name" :"model_run","args" : {}}
]
`

func TestParseProfile(t *testing.T) {
	p, err := ParseProfile(strings.NewReader(profileSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"matmul MatMul CPUExecutionProvider", "add Add CUDAExecutionProvider"}
	if fmt.Sprint(p.Nodes) != fmt.Sprint(want) || p.Providers["CPUExecutionProvider"] != 1 || p.Providers["CUDAExecutionProvider"] != 1 {
		t.Fatalf("placement %+v", p)
	}
	nodes, _ := parseProfile(strings.NewReader(profileSample))
	if s := summarize(nodes, DeviceCUDA); s.FellBackToCPU != 1 {
		t.Fatalf("on cuda: %+v, want 1 fallback", s)
	}
	if s := summarize(nodes, DeviceCPU); s.FellBackToCPU != 0 {
		t.Fatalf("on cpu: %+v, want no fallback", s)
	}
	if p, err := ParseProfile(strings.NewReader("[]")); err != nil || len(p.Nodes) != 0 {
		t.Fatalf("empty profile: %+v, %v", p, err)
	}
}

func TestParseProfileMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"empty":        "",
		"object":       `{"cat":"Node"}`,
		"truncated":    profileSample[:len(profileSample)/2],
		"unterminated": "[",
		"wrong type":   `[{"cat": 5}]`,
		"args type":    `[{"cat":"Node","args":{"provider":["x"]}}]`,
		"trailing":     "[] []",
		"not json":     "[nope]",
	} {
		_, err := ParseProfile(strings.NewReader(in))
		var e *Error
		if !errors.Is(err, ErrProfile) || !errors.As(err, &e) {
			t.Errorf("%s: error %v, want ErrProfile", name, err)
		}
	}
}

func FuzzParseProfile(f *testing.F) {
	f.Add(profileSample)
	f.Add("[]")
	f.Add(`[{"cat":"Node","name":"x_kernel_time","args":{"provider":"P","op_name":"O"}}]`)
	f.Add(profileSample[:100])
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseProfile(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrProfile) {
				t.Fatalf("error %v does not wrap ErrProfile", err)
			}
			return
		}
		total := 0
		for _, n := range p.Providers {
			total += n
		}
		if total != len(p.Nodes) {
			t.Fatalf("providers count %d nodes, list has %d", total, len(p.Nodes))
		}
	})
}
