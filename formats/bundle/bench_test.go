package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/manifest"
)

var (
	benchMB   = flag.Int("bundle.mb", 64, "size in MiB of the artifact BenchmarkPack/BenchmarkUnpack generate")
	benchKeep = flag.String("bundle.keep", "", "generate the benchmark artifacts under this directory and keep them (for timing the CLI on them)")
)

// benchBundle packs a benchArtifact of the given precision into a bundle
// file; size is the artifact's weights size.
func benchBundle(b *testing.B, kind string) (bundle string, size int64) {
	dir, size := benchArtifact(b, kind)
	bundle = filepath.Join(b.TempDir(), "b.tar.zst")
	if _, err := Pack(context.Background(), dir, bundle, PackOptions{}); err != nil {
		b.Fatal(err)
	}
	return bundle, size
}

// benchArtifact writes an artifact of the given precision whose weights
// file is *benchMB MiB, streamed in 16 MiB chunks so that a 1 GiB artifact
// needs no 1 GiB buffer, with an exact manifest.
func benchArtifact(b *testing.B, kind string) (dir string, size int64) {
	b.Helper()
	root := *benchKeep
	if root == "" {
		root = b.TempDir()
	}
	dir = filepath.Join(root, fmt.Sprintf("%s-%dMiB", kind, *benchMB))
	if _, err := os.Stat(filepath.Join(dir, manifest.Name)); err == nil {
		return dir, int64(*benchMB) << 20 // kept from an earlier run
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	const chunk = 16 << 20
	total := int64(*benchMB) << 20
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	for off, seed := int64(0), uint64(1); off < total; off, seed = off+chunk, seed+1 {
		p := makePayload(kind, int(min(chunk, total-off)), seed)
		f.Write(p)
		h.Write(p)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	cfg := []byte(`{"architectures":["ViTForImageClassification"],"hidden_size":768}`)
	cs := sha256.Sum256(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	man, _ := json.MarshalIndent(map[string]any{
		"tool_version": "bench", "precision": kind,
		"files": []manifest.File{
			{Path: "config.json", Size: int64(len(cfg)), SHA256: hex.EncodeToString(cs[:])},
			{Path: "model.safetensors", Size: total, SHA256: hex.EncodeToString(h.Sum(nil))},
		},
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, manifest.Name), man, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, total
}

// BenchmarkPack packs a generated artifact of each precision with the
// auto level: MB/s of artifact bytes, and the compression ratio.
func BenchmarkPack(b *testing.B) {
	for _, kind := range payloadKinds {
		b.Run(kind, func(b *testing.B) {
			dir, size := benchArtifact(b, kind)
			out := filepath.Join(b.TempDir(), "b.tar.zst")
			b.SetBytes(size)
			b.ReportAllocs()
			var res *PackResult
			cpu0, iters := cpuSeconds(), 0
			for b.Loop() {
				iters++
				var err error
				if res, err = Pack(context.Background(), dir, out, PackOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, int(size)*iters, cpuSeconds()-cpu0, "cpu-MB/s")
			b.ReportMetric(res.Ratio, "ratio")
		})
	}
}

// BenchmarkUnpack unpacks (verifying every hash, fsyncing every file) the
// bundle of each precision's artifact: MB/s of artifact bytes.
func BenchmarkUnpack(b *testing.B) {
	for _, kind := range payloadKinds {
		b.Run(kind, func(b *testing.B) {
			bundle, size := benchBundle(b, kind)
			root := b.TempDir()
			b.SetBytes(size)
			b.ReportAllocs()
			i, cpu := 0, 0.0
			for b.Loop() {
				cpu0 := cpuSeconds()
				out := filepath.Join(root, fmt.Sprint(i))
				i++
				if _, err := Unpack(context.Background(), bundle, out, UnpackOptions{}); err != nil {
					b.Fatal(err)
				}
				cpu += cpuSeconds() - cpu0
				b.StopTimer()
				os.RemoveAll(out)
				b.StartTimer()
			}
			reportCPU(b, int(size)*i, cpu, "cpu-MB/s")
		})
	}
}

// BenchmarkCheck stream-verifies each bundle without writing anything.
func BenchmarkCheck(b *testing.B) {
	for _, kind := range payloadKinds {
		b.Run(kind, func(b *testing.B) {
			bundle, size := benchBundle(b, kind)
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0, iters := cpuSeconds(), 0
			for b.Loop() {
				iters++
				if _, err := Check(context.Background(), bundle, UnpackOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, int(size)*iters, cpuSeconds()-cpu0, "cpu-MB/s")
		})
	}
}
