package convert

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkConvert measures end-to-end conversion (read, quantize, error
// statistics, write, hash) of a synthesized DeiT-Small checkpoint, per
// precision and thread count. SetBytes is the FP32 input size, so MB/s is
// input throughput comparable with the quant kernels' figures.
func BenchmarkConvert(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	res, err := Synth(context.Background(), "deit-small-distilled-patch16-224", src, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range Precisions {
		for _, threads := range []int{1, 2} {
			for _, stats := range []bool{true, false} {
				name := string(p) + "/threads=" + string(rune('0'+threads))
				if !stats {
					name += "/no-stats"
				}
				b.Run(name, func(b *testing.B) {
					b.SetBytes(res.Bytes)
					b.ReportAllocs()
					for i := 0; i < b.N; i++ {
						out := filepath.Join(dir, "out")
						if _, err := Convert(context.Background(), src, out, Options{Precision: p,
							Threads: threads, NoStats: !stats}); err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						os.RemoveAll(out)
						b.StartTimer()
					}
				})
			}
		}
	}
}
