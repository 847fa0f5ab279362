//go:build cgo

package ort

import (
	"context"
	"testing"

	"github.com/quantpack/quantpack/verify"
)

// BenchmarkRunTiny measures what Run adds to ONNX Runtime's own run time on
// a model small enough (X[1,5]·W[5,3]+B, ArgMax) that the bookkeeping
// shows: Run is the full call (input checks, plan lookup, copies in and
// out); ORTCall is the bare C API Run over the same cached tensors. Their
// difference is the per-Run overhead.
func BenchmarkRunTiny(b *testing.B) {
	needORT(b)
	s, err := OpenBytes(newLinear(5, 3).model("", "batch", 3), Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	in := []verify.Tensor{{Name: "X", DType: verify.Float32, Shape: []int64{1, 5}, F32: input(1, 5, 0)}}
	ctx := context.Background()
	if _, err := s.Run(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.Run("Run", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Run(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ORTCall", func(b *testing.B) {
		b.ReportAllocs()
		p := s.plans[0]
		for b.Loop() {
			if st, err := s.runOnce(ctx, p); st != nil || err != nil {
				b.Fatal(st, err)
			}
		}
	})
}
