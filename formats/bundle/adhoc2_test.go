package bundle

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestAdhocJobsDeterminism(t *testing.T) {
	raw := makePayload("bf16", 40<<20+12345, 3)
	var outs [][]byte
	for _, c := range []int{2, 3, 4, 8} {
		var comp bytes.Buffer
		enc, _ := zstd.NewWriter(&comp, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true), zstd.WithEncoderConcurrency(c), zstd.WithConcurrentBlocks(true), zstd.WithWindowSize(1<<20))
		for off := 0; off < len(raw); off += 77777 {
			enc.Write(raw[off:min(off+77777, len(raw))])
		}
		enc.Close()
		outs = append(outs, comp.Bytes())
	}
	for i := range outs {
		t.Log(len(outs[i]), bytes.Equal(outs[0], outs[i]))
	}
}
