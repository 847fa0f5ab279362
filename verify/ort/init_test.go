//go:build cgo

package ort

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

const childEnv = "QUANTPACK_ORT_INIT_CHILD"

// TestInitFailures runs in a fresh process (ONNX Runtime loads once per
// process): missing and unloadable libraries fail with ErrUnavailable and
// leave nothing behind, so loading the real library afterwards works, also
// from concurrent callers.
func TestInitFailures(t *testing.T) {
	if lib := os.Getenv(childEnv); lib != "" {
		initFailuresChild(t, lib)
		return
	}
	needORT(t)
	lib, _ := LibraryPath("")
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitFailures$", "-test.v")
	// Open must not find a library on its own in the child.
	cmd.Env = append(os.Environ(), childEnv+"="+lib, EnvLibraryPath+"=/nonexistent/libonnxruntime.so.1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

func initFailuresChild(t *testing.T, lib string) {
	notELF := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(notELF, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if Version() != "" {
		t.Fatalf("Version before Init = %q", Version())
	}
	cases := map[string]string{"missing": "/nonexistent/libonnxruntime.so.1", "not ELF": notELF}
	if libc := findLibc(t); libc != "" {
		cases["no OrtGetApiBase"] = libc
	}
	for name, path := range cases {
		err := Init(path)
		if !errors.Is(err, ErrUnavailable) || fault.ClassOf(err) != fault.Runtime {
			t.Fatalf("%s: %v, want ErrUnavailable", name, err)
		}
		t.Logf("%s: %v", name, err)
		if _, err := OpenBytes(scaleModel(), Options{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: Open without a library: %v", name, err)
		}
	}
	// Concurrent first calls: one loads, all succeed.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Init(lib)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Init %d after failures: %v", i, err)
		}
	}
	if err := Init(""); err != nil {
		t.Fatalf("Init(\"\") once loaded: %v", err)
	}
	if err := Init(notELF); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Init of another library after loading: %v", err)
	}
	if Version() == "" {
		t.Fatal("no version after Init")
	}
}
