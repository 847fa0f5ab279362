//go:build !cgo

package ort

import (
	"context"
	"errors"
	"testing"
)

func TestWithoutCgo(t *testing.T) {
	checks := map[string]error{"Init": Init("")}
	_, checks["Open"] = Open("model.onnx", Options{})
	_, checks["OpenBytes"] = OpenBytes([]byte{1}, Options{})
	var s Session
	_, checks["Run"] = s.Run(context.Background(), nil)
	_, checks["Placement"] = s.Placement()
	_, checks["EndProfiling"] = s.EndProfiling()
	_, _, nvmlErr := GPUMemoryOfProcess(1)
	for name, err := range checks {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
	}
	if !errors.Is(nvmlErr, ErrNVMLUnavailable) {
		t.Errorf("GPUMemoryOfProcess: %v, want ErrNVMLUnavailable", nvmlErr)
	}
	if Version() != "" {
		t.Errorf("Version() = %q", Version())
	}
}
