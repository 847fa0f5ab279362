//go:build cgo

package ort

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNVMLBuildQuiet compiles go-nvml from scratch with the Makefile's cgo
// flags and fails on any compiler warning: a fresh `make build` printed
// ~145 lines of gcc deprecation warnings from its wrappers of NVML
// functions CUDA 13 deprecated. A define that changes on every run is added
// to the flags: it changes the build cache key of cgo packages only, so
// go-nvml (and runtime/cgo) are compiled again and the pure-Go rest comes
// from the cache, where `go build -a` would rebuild the standard library.
func TestNVMLBuildQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles go-nvml (about a minute on two busy cores); skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed: the flags live in the Makefile")
	}
	env := withoutEnv(os.Environ(), "CGO_CFLAGS")
	cmd := exec.Command(mk, "-s", "--no-print-directory", "-C", root, "cgo-cflags")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make cgo-cflags: %v", err)
	}
	flags := strings.TrimSpace(string(out))
	nonce := fmt.Sprintf(" -DQUANTPACK_BUILD_CHECK=%d", time.Now().UnixNano())
	goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Skipf("no go tool on PATH: %v", err)
	}
	build := exec.Command(goTool, "build", "-o", os.DevNull, "github.com/NVIDIA/go-nvml/pkg/nvml")
	build.Dir = root
	build.Env = append(env, "CGO_CFLAGS="+flags+nonce)
	b, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("go build go-nvml with CGO_CFLAGS=%q: %v\n%s", flags, err, b)
	}
	if n := strings.Count(string(b), "warning"); n > 0 {
		t.Errorf("building go-nvml with CGO_CFLAGS=%q printed %d warnings:\n%.2000s", flags, n, b)
	}
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
