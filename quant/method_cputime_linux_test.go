//go:build linux

package quant

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMethodCPUTime prints each 4-bit method's thread CPU time on the
// benchmark weight and its ratio to rtn at the same block size, measured
// like TestCPUThroughput (best of 5 rounds, CPU time, so that a shared
// machine's neighbours do not count). It runs only when asked:
//
//	QUANT_CPUTIME=1 go test ./quant -run MethodCPUTime -v
func TestMethodCPUTime(t *testing.T) {
	if os.Getenv("QUANT_CPUTIME") == "" {
		t.Skip("set QUANT_CPUTIME=1 to measure")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	threadCPU := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	cpu := func(f func()) time.Duration {
		f()
		best := time.Duration(1 << 62)
		for r := 0; r < 5; r++ {
			t0 := threadCPU()
			f()
			best = min(best, threadCPU()-t0)
		}
		return best
	}
	for _, bs := range []int{32, 128} {
		var base time.Duration
		for _, tc := range []struct {
			m   Method
			sym bool
		}{{MethodRTN, true}, {MethodMSE, true}, {MethodMSE, false}, {MethodHQQ, false}} {
			p := Int4Params{BlockSize: bs, Symmetric: tc.sym}
			np, ns, nz := Int4Sizes(benchRows, benchCols, p)
			packed, scales, zeros := make([]byte, np), make([]float32, ns), make([]byte, nz)
			d := cpu(func() { _ = QuantizeInt4With(tc.m, packed, scales, zeros, benchSrc, benchRows, benchCols, p) })
			if tc.m == MethodRTN {
				base = d
			}
			fmt.Printf("int4 bs=%-3d %-4s sym=%-5v %9v/op  %5.1f× rtn\n", bs, tc.m, tc.sym, d, float64(d)/float64(base))
		}
	}
	np, na := NF4Sizes(len(benchSrc), 64)
	packed, absmax := make([]byte, np), make([]float32, na)
	rtn := cpu(func() { _ = QuantizeNF4With(MethodRTN, packed, absmax, benchSrc, 64) })
	mse := cpu(func() { _ = QuantizeNF4With(MethodMSE, packed, absmax, benchSrc, 64) })
	fmt.Printf("nf4  bs=64  rtn %v/op, mse %v/op (%.1f× rtn)\n", rtn, mse, float64(mse)/float64(rtn))
}
