// Package orttest loads ONNX Runtime for the tests of packages that run
// models (convert's exports, study, the command line): a test that needs the
// runtime calls Require, which skips it when the library is absent or cannot
// be loaded, and fails it in CI (testenv.SkipOrFail). verify/ort's own tests
// cannot import it (it imports verify/ort) and keep their needORT.
package orttest

import (
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify/ort"
)

// Require loads ONNX Runtime (ort.Init: --ort-lib's search, the `make ort`
// copy, $ONNXRUNTIME_SHARED_LIBRARY_PATH), or skips the test saying why.
func Require(t testing.TB) {
	t.Helper()
	if err := ort.Init(""); err != nil {
		testenv.SkipOrFail(t, "ONNX Runtime not available (run `make ort`): %v", err)
	}
}
