package quant

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
)

// fixturesDir returns ../shared/fixtures, skipping (failing in CI) when absent.
func fixturesDir(t *testing.T) string { return testenv.Fixtures(t, "") }

// singleTensorData returns the data buffer of a one-tensor safetensors file
// (8-byte header length, JSON header, data), enough for the samples here.
func singleTensorData(t *testing.T, path string, want int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 {
		t.Fatalf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) || uint64(len(b)-8)-n != uint64(want) {
		t.Fatalf("%s: header length %d does not leave %d data bytes in %d", path, n, want, len(b))
	}
	return b[8+n:]
}

// TestF16AgainstSafetensorsSamples compares with the F16 and F32 samples the
// official safetensors library wrote from numpy (values -3..2).
func TestF16AgainstSafetensorsSamples(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "safetensors", "hf-samples")
	hb := singleTensorData(t, filepath.Join(dir, "e.safetensors"), 12) // F16 [6]
	fb := singleTensorData(t, filepath.Join(dir, "f.safetensors"), 24) // F32 [6]
	f := make([]float32, 6)
	h := make([]uint16, 6)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(fb[4*i:]))
		h[i] = binary.LittleEndian.Uint16(hb[2*i:])
		if f[i] != float32(i-3) {
			t.Fatalf("F32 sample[%d] = %v, want %d", i, f[i], i-3)
		}
	}
	got := make([]uint16, 6)
	if ov := F32ToF16(got, f); ov != 0 {
		t.Errorf("overflow %d", ov)
	}
	back := make([]float32, 6)
	F16ToF32(back, h)
	for i := range h {
		if got[i] != h[i] || back[i] != f[i] {
			t.Errorf("element %d: F32ToF16 %#04x, file %#04x; F16ToF32 %v, want %v", i, got[i], h[i], back[i], f[i])
		}
	}
}
