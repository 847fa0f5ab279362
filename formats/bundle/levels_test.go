package bundle

import (
	"bytes"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// levelVariants are the encoder settings the level measurement compares:
// the four klauspost levels, plus fastest and default with literal entropy
// coding forced on (those two levels skip it when a block has no matches,
// which is most blocks of weight data).
var levelVariants = []struct {
	name string
	opts []zstd.EOption
}{
	{"fastest", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest)}},
	{"fastest+lit", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true)}},
	{"default", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault)}},
	{"default+lit", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithAllLitEntropyCompression(true)}},
	{"better", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBetterCompression)}},
	{"best", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression)}},
}

// BenchmarkLevel measures compression ratio and single-core speed of each
// encoder setting on each precision's weight bytes (32 MiB per payload).
// Reported: MB/s of input (compression), ratio (compressed/raw) and
// decomp-MB/s. Used to choose the levels in level.go; see docs/bundle.md.
func BenchmarkLevel(b *testing.B) {
	const n = 32 << 20
	for _, kind := range payloadKinds {
		raw := makePayload(kind, n, 7)
		for _, v := range levelVariants {
			b.Run(kind+"/"+v.name, func(b *testing.B) {
				opts := append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, v.opts...)
				var comp bytes.Buffer
				b.SetBytes(n)
				b.ReportAllocs()
				for b.Loop() {
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
				b.ReportMetric(float64(comp.Len())/n, "ratio")
				dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
				if err != nil {
					b.Fatal(err)
				}
				defer dec.Close()
				start := nowSeconds()
				if err := dec.Reset(bytes.NewReader(comp.Bytes())); err != nil {
					b.Fatal(err)
				}
				m, err := io.Copy(io.Discard, dec)
				if err != nil || m != n {
					b.Fatalf("decode: %d bytes, %v", m, err)
				}
				b.ReportMetric(n/1e6/(nowSeconds()-start), "decomp-MB/s")
			})
		}
	}
}
