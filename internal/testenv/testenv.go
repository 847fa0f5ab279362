// Package testenv finds what tests need from outside the repository: the
// third-party fixtures in ../shared/fixtures. Absent fixtures skip a test,
// except in CI (QUANTPACK_CI=1, set by .ci/run), where they fail it.
// CopyDir and CopyFile give a test its own copy of a fixture to change.
//
// The environment variables the tests read, all in one list:
//
//	QUANTPACK_CI              1 in CI: missing fixtures or runtime fail instead of skip;
//	                          also runs the 2 GiB external-data test
//	QUANTPACK_LONG            1: run the slow tests CI runs (formats/onnx 2 GiB write)
//	QUANTPACK_BIG             1: export every synth preset, not only the small ones (convert)
//	QUANTPACK_BENCH           1: run BenchmarkMobileViTSpeed (minutes; convert)
//	QUANTPACK_BENCH_PRESET    synth preset of convert's graph benchmarks (default deit-tiny-patch16-224)
//	QUANTPACK_BENCH_THREADS   ONNX Runtime intra-op threads of those benchmarks (default 2)
//	QUANTPACK_BENCH_VARIANTS  rows of BenchmarkLatencyTable to keep, e.g. fp32,int4 (default: all)
//	QUANTPACK_BENCH_ONNX      export directory of BenchmarkCalibrationCost (quantize; skipped without)
//	QUANTPACK_BENCH_SAMPLES   its sample count (default 8)
//	QUANTPACK_BENCH_MODEL     checkpoint of BenchmarkSensitivity (tune; default the trained vit-28)
//	QUANTPACK_LARGE_MODEL     a checkpoint past 2 GiB for tune's TestVariantsPastProtobufLimit (opt-in)
//	QUANTPACK_BIN             set by the newcomer e2e test for the README's commands (not a knob)
//	ONNXRUNTIME_SHARED_LIBRARY_PATH  the ONNX Runtime library (set by the Makefile to the `make ort` copy)
//
// and three a test sets for the child process it starts (not for people):
//
//	QUANTPACK_TEST_AS_MAIN      cmd/quantpack: the test binary runs as quantpack (verify's memory children)
//	QUANTPACK_ORT_INIT_CHILD    verify/ort: the child that initializes the runtime once per process
//	QUANTPACK_VERIFY_TOUCH_MIB  verify: the helper child that touches N MiB for the peak-RSS tests
//
// QUANTPACK_PEAK_RSS_FILE (verify.PeakRSSFileEnv) is not a test knob: it is
// the product's memory-child protocol.
package testenv

import (
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run under .ci/run.
func InCI() bool { return os.Getenv("QUANTPACK_CI") == "1" }

// SkipOrFail skips the test, or fails it in CI, where nothing may be missing.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// repoRoot returns the directory holding go.mod above the working directory
// (a test's working directory is its package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the test directory")
		}
		dir = parent
	}
}

// Lookup returns ../shared/fixtures/<sub> beside the repository root and
// whether it exists, for callers to whom fixtures are optional (fuzz seeds).
func Lookup(sub string) (string, bool) {
	root, err := repoRoot()
	if err != nil {
		return "", false
	}
	p := filepath.Join(root, "..", "shared", "fixtures", sub)
	_, err = os.Stat(p)
	return p, err == nil
}

// Fixtures returns ../shared/fixtures/<sub> beside the repository root
// (sub may be empty), skipping when it is absent.
func Fixtures(t testing.TB, sub string) string {
	t.Helper()
	p, ok := Lookup(sub)
	if !ok {
		SkipOrFail(t, "fixtures not found at %q; they live in ../shared/fixtures beside the repository", p)
	}
	return p
}

// CopyFile copies src to dst, failing the test on error. Fixtures are
// read-only inputs; a test that needs a damaged copy writes it elsewhere.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CopyDir copies the regular files of src (not its subdirectories) into a
// new temporary directory of the same base name, which the test may change,
// and returns that directory.
func CopyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			CopyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		}
	}
	return dst
}

// ReadPNG decodes the PNG file at path, failing the test when it cannot.
func ReadPNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
