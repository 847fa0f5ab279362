package bundle

import (
	"bytes"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkLevel measures compression ratio and single-core speed of each
// level, with pack's window, on each precision's weight bytes (32 MiB per
// payload). Reported: MB/s of input (compression), ratio (compressed/raw)
// and decomp-MB/s. Used to choose the levels in level.go; see
// docs/bundle.md.
func BenchmarkLevel(b *testing.B) {
	const n = 32 << 20
	for _, kind := range payloadKinds {
		raw := makePayload(kind, n, 7)
		for _, l := range Levels[1:] {
			b.Run(kind+"/"+string(l), func(b *testing.B) {
				opts, err := encoderOptions(l, 2)
				if err != nil {
					b.Fatal(err)
				}
				// One goroutine, for per-core speed; it turns the
				// parallel job mode off, which changes the block
				// boundaries but not the ratio (checked: same to 4 digits).
				opts = append(opts, zstd.WithEncoderConcurrency(1))
				var comp bytes.Buffer
				b.SetBytes(n)
				b.ReportAllocs()
				cpu0, iters := cpuSeconds(), 0
				for b.Loop() {
					iters++
					comp.Reset()
					enc, err := zstd.NewWriter(&comp, opts...)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := enc.Write(raw); err != nil {
						b.Fatal(err)
					}
					if err := enc.Close(); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, n*iters, cpuSeconds()-cpu0, "cpu-MB/s")
				b.ReportMetric(float64(comp.Len())/n, "ratio")
				dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
				if err != nil {
					b.Fatal(err)
				}
				defer dec.Close()
				start, cpu1 := nowSeconds(), cpuSeconds()
				if err := dec.Reset(bytes.NewReader(comp.Bytes())); err != nil {
					b.Fatal(err)
				}
				m, err := io.Copy(io.Discard, dec)
				if err != nil || m != n {
					b.Fatalf("decode: %d bytes, %v", m, err)
				}
				b.ReportMetric(n/1e6/(nowSeconds()-start), "decomp-MB/s")
				reportCPU(b, n, cpuSeconds()-cpu1, "decomp-cpu-MB/s")
			})
		}
	}
}

// reportCPU reports bytes per CPU-second (see cpuSeconds).
func reportCPU(b *testing.B, bytes int, sec float64, unit string) {
	if sec > 0 {
		b.ReportMetric(float64(bytes)/1e6/sec, unit)
	}
}
