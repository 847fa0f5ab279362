//go:build linux

package quant

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkCPUThroughput measures per-thread throughput in CPU time
// (CLOCK_THREAD_CPUTIME_ID) rather than wall time, for a machine shared with
// other work, where wall-clock benchmarks mostly measure the neighbours:
//
//	go test ./quant -run '^$' -bench CPUThroughput -benchtime 10x
//
// Each sub-benchmark runs one kernel on the benchmark weight ([3072, 768]
// float32, 9.4 MB) and reports cpu-GB/s of float32 input and cpu-ns/op;
// memcpy of the same bytes is the yardstick. Memory bandwidth is still
// shared, so treat the numbers as provisional.
func BenchmarkCPUThroughput(b *testing.B) {
	threadCPU := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	n := len(benchSrc) * 4
	rate := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f() // warm-up: page faults, caches
			b.SetBytes(int64(n))
			b.ResetTimer()
			t0 := threadCPU()
			for i := 0; i < b.N; i++ {
				f()
			}
			cpu := (threadCPU() - t0) / time.Duration(b.N)
			b.ReportMetric(float64(n)/cpu.Seconds()/1e9, "cpu-GB/s")
			b.ReportMetric(float64(cpu.Nanoseconds()), "cpu-ns/op")
		})
	}
	f32 := make([]float32, len(benchSrc))
	u16 := make([]uint16, len(benchSrc))
	i8 := make([]int8, len(benchSrc))
	scb := make([]float32, benchRows)
	np, na := NF4Sizes(len(benchSrc), 64)
	packed, absmax := make([]byte, np), make([]float32, na)
	codes, nested := make([]uint8, na), make([]float32, (na+255)/256)
	p4 := Int4Params{BlockSize: 32, Symmetric: true}
	n4, s4, _ := Int4Sizes(benchRows, benchCols, p4)
	q4, sc4 := make([]byte, n4), make([]float32, s4)
	rate("memcpy", func() { copy(f32, benchSrc) })
	old := useAsm
	defer func() { useAsm = old }()
	for _, asm := range []bool{true, false} {
		if asm && !hasAVX2 {
			continue
		}
		useAsm = asm
		path := map[bool]string{true: "asm", false: "go"}[asm]
		rate("F32ToF16/"+path, func() { F32ToF16(u16, benchSrc) })
		rate("F32ToBF16/"+path, func() { F32ToBF16(u16, benchSrc) })
		rate("QuantizeInt8Rows/"+path, func() { _ = QuantizeInt8Rows(i8, scb, benchSrc, benchRows, benchCols) })
		rate("QuantizeNF4/"+path, func() { _ = QuantizeNF4(packed, absmax, benchSrc, 64) })
		rate("NF4+DoubleQuant/"+path, func() {
			_ = QuantizeNF4(packed, absmax, benchSrc, 64)
			_, _ = DoubleQuant(codes, nested, absmax, 256)
		})
		rate("Compare/"+path, func() { _ = Compare(benchSrc, f32) })
		rate("DequantizeNF4/"+path, func() { _ = DequantizeNF4(f32, packed, absmax, 64) })
	}
	useAsm = old
	rate("QuantizeInt4/sym32", func() { _ = QuantizeInt4(q4, sc4, nil, benchSrc, benchRows, benchCols, p4) })
}
