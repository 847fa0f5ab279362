package quant

import (
	"fmt"
	"testing"
)

// BenchmarkInt4Method quantizes the ViT-Base MLP weight of bench_test.go with
// each method at block 32 and 128; MB/s is float32 input. The budget
// is convert time for mse/hqq ≤ 5× rtn: BenchmarkConvertMethod measures
// that end to end; this one isolates the kernels (compare within one run).
func BenchmarkInt4Method(b *testing.B) {
	for _, bs := range []int{32, 128} {
		for _, tc := range []struct {
			m   Method
			sym bool
		}{{MethodRTN, true}, {MethodMSE, true}, {MethodRTN, false}, {MethodMSE, false}, {MethodHQQ, false}} {
			p := Int4Params{BlockSize: bs, Symmetric: tc.sym}
			name := fmt.Sprintf("bs=%d/%s", bs, tc.m)
			if !tc.sym {
				name += "-asym"
			}
			b.Run(name, func(b *testing.B) {
				np, ns, nz := Int4Sizes(benchRows, benchCols, p)
				packed, scales, zeros := make([]byte, np), make([]float32, ns), make([]byte, nz)
				b.SetBytes(int64(len(benchSrc) * 4))
				b.ReportAllocs()
				for b.Loop() {
					if err := QuantizeInt4With(tc.m, packed, scales, zeros, benchSrc, benchRows, benchCols, p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkNF4Method: nf4 rtn and mse at bitsandbytes' block 64.
func BenchmarkNF4Method(b *testing.B) {
	for _, m := range []Method{MethodRTN, MethodMSE} {
		b.Run(string(m), func(b *testing.B) {
			np, na := NF4Sizes(len(benchSrc), 64)
			packed, absmax := make([]byte, np), make([]float32, na)
			b.SetBytes(int64(len(benchSrc) * 4))
			b.ReportAllocs()
			for b.Loop() {
				if err := QuantizeNF4With(m, packed, absmax, benchSrc, 64); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
