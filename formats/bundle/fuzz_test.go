package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/quantpack/quantpack/internal/fault"
)

// fuzzMax keeps fuzz inputs from asking for large outputs.
const fuzzMax = 1 << 20

// seedBundles are valid bundles from the writer and the hostile archives.
func seedBundles(t testing.TB) [][]byte {
	dir := t.TempDir()
	writeArtifact(t, dir, good, sampleMeta)
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	if _, err := Pack(context.Background(), dir, out, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seeds := [][]byte{b}
	for _, c := range hostileCases(t) {
		if len(c.data) < 1<<16 {
			seeds = append(seeds, c.data)
		}
	}
	return seeds
}

// checkFuzzResult holds for any input: no panic (implicit), every error
// classified as invalid or unsupported input (or a size limit), and a nil
// error only with a clean result.
func checkFuzzResult(t *testing.T, res *CheckResult, err error) {
	if err != nil {
		if c := fault.ClassOf(err); c != fault.Invalid && c != fault.Unsupported {
			t.Fatalf("unclassified error (class %v): %v", c, err)
		}
		return
	}
	if res == nil || !res.OK || len(res.Differences) != 0 {
		t.Fatalf("nil error with result %+v", res)
	}
}

// FuzzVerify feeds arbitrary bytes to the stream verifier.
func FuzzVerify(f *testing.F) {
	for _, s := range seedBundles(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(context.Background(), bytes.NewReader(data), "fuzz", UnpackOptions{MaxBytes: fuzzMax, overhead: fuzzMax})
		checkFuzzResult(t, res, err)
	})
}

// FuzzVerifyTar fuzzes the tar layer: the input is compressed and sealed
// with a valid trailer first, so mutations reach the tar and manifest
// checks instead of dying in zstd. Whatever Verify accepts, Unpack must
// accept too and write exactly the files the manifest lists.
func FuzzVerifyTar(f *testing.F) {
	for _, s := range seedBundles(f) {
		if tb, ok := tryDecompress(s); ok && len(tb) <= fuzzMax {
			f.Add(tb)
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tarBytes []byte) {
		z := enc.EncodeAll(tarBytes, nil)
		sum := sha256.Sum256(z)
		z = append(z, trailer(sum[:])...)
		res, err := Verify(context.Background(), bytes.NewReader(z), "fuzz", UnpackOptions{MaxBytes: fuzzMax, overhead: fuzzMax})
		checkFuzzResult(t, res, err)
		if err != nil {
			return
		}
		out := filepath.Join(t.TempDir(), "out")
		ures, err := Unpack(context.Background(), writeBundle(t, z), out, UnpackOptions{MaxBytes: fuzzMax, overhead: fuzzMax})
		if err != nil {
			t.Fatalf("Verify accepted, Unpack refused: %v", err)
		}
		if ures.Files != res.Files+1+btoi(res.Provenance) {
			t.Fatalf("unpacked %d files, manifest lists %d", ures.Files, res.Files)
		}
		check, err := Check(context.Background(), out, UnpackOptions{})
		if err != nil || !check.OK {
			t.Fatalf("unpacked dir does not check: %+v, %v", check, err)
		}
	})
}

func tryDecompress(b []byte) ([]byte, bool) {
	zr, err := zstd.NewReader(nil)
	if err != nil {
		return nil, false
	}
	defer zr.Close()
	out, err := zr.DecodeAll(b, nil)
	return out, err == nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
