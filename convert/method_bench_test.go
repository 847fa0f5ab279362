package convert

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/quant"
)

// BenchmarkConvertMethod is BenchmarkConvert (synthesized DeiT-Small, end to
// end: read, quantize, error statistics, write, hash) for int4 at block 128
// and nf4 with each 4-bit method, so the cost of mse and hqq over rtn is a
// ratio within one run (the budget: ≤ 5×).
func BenchmarkConvertMethod(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	res, err := Synth(context.Background(), "deit-small-distilled-patch16-224", src, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"int4/rtn", Options{Precision: Int4, BlockSize: 128}},
		{"int4/mse", Options{Precision: Int4, BlockSize: 128, Method: quant.MethodMSE}},
		{"int4/rtn-asym", Options{Precision: Int4, BlockSize: 128, Asymmetric: true}},
		{"int4/hqq", Options{Precision: Int4, BlockSize: 128, Method: quant.MethodHQQ}},
		{"nf4/rtn", Options{Precision: NF4, DoubleQuant: SwitchOn}},
		{"nf4/mse", Options{Precision: NF4, DoubleQuant: SwitchOn, Method: quant.MethodMSE}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(res.Bytes)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(dir, "out")
				if _, err := Convert(context.Background(), src, out, tc.opt); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(out)
				b.StartTimer()
			}
		})
	}
}
