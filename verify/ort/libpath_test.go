package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// fakeLibrary makes root/third_party/ort/libonnxruntime.so.1.
func fakeLibrary(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, repoLibrary)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLibraryPath(t *testing.T) {
	root := t.TempDir()
	lib := fakeLibrary(t, root)
	other := fakeLibrary(t, filepath.Join(root, "other"))
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Setenv(EnvLibraryPath, "")
	t.Chdir(deep)
	if got, err := LibraryPath(""); err != nil || got != lib {
		t.Fatalf("walk up from %s: %q, %v; want %q", deep, got, err, lib)
	}
	t.Setenv(EnvLibraryPath, other)
	if got, err := LibraryPath(""); err != nil || got != other {
		t.Fatalf("from $%s: %q, %v", EnvLibraryPath, got, err)
	}
	if got, err := LibraryPath(lib); err != nil || got != lib {
		t.Fatalf("explicit: %q, %v", got, err)
	}

	for name, explicit := range map[string]string{
		"explicit missing":  filepath.Join(root, "none.so"),
		"explicit a folder": root,
	} {
		_, err := LibraryPath(explicit)
		checkUnavailable(t, name, err)
	}
	t.Setenv(EnvLibraryPath, filepath.Join(root, "gone.so"))
	_, err := LibraryPath("")
	checkUnavailable(t, "env missing", err)

	// Nothing anywhere: the working directory is outside any checkout and
	// the test binary lives in the build cache.
	t.Setenv(EnvLibraryPath, "")
	t.Chdir(t.TempDir())
	if _, err := LibraryPath(""); err != nil {
		checkUnavailable(t, "nothing found", err)
	} else if exe, _ := os.Executable(); !strings.HasPrefix(exe, os.TempDir()) {
		t.Logf("library found above the test binary %s", exe)
	} else {
		t.Fatal("found a library with none in reach")
	}
}

func checkUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || fault.ClassOf(err) != fault.Runtime {
		t.Fatalf("%s: error %v, want ErrUnavailable (runtime)", what, err)
	}
	// The message tells the user how to fix it.
	if !strings.Contains(err.Error(), fixHint) {
		t.Fatalf("%s: %q lacks the fix hint", what, err)
	}
}

func TestOptionsNormalized(t *testing.T) {
	o, err := Options{}.normalized()
	if err != nil || o.OptLevel != OptAll || o.Device != DeviceCPU {
		t.Fatalf("zero options → %+v, %v", o, err)
	}
	for _, bad := range []Options{
		{IntraOpThreads: -1},
		{InterOpThreads: -2},
		{OptLevel: 3},
		{OptLevel: -2},
		{Device: "gpu"},
		{EPLibrary: "x.so"},
		{Device: DeviceCPU, EPLibrary: "x.so"},
	} {
		if _, err := bad.normalized(); !errors.Is(err, ErrOptions) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("%+v: %v, want ErrOptions", bad, err)
		}
	}
	for _, good := range []Options{{OptLevel: OptDisable}, {OptLevel: OptBasic}, {OptLevel: OptExtended}, {Device: DeviceCUDA, EPLibrary: "x.so"}} {
		if o, err := good.normalized(); err != nil || o.OptLevel != good.OptLevel && good.OptLevel != 0 {
			t.Errorf("%+v: %+v, %v", good, o, err)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	err := errorf(ErrInput, "run", "m.onnx", "X", "shape %v", []int64{1, 2})
	var e *Error
	if !errors.As(err, &e) || e.Path != "m.onnx" || e.Name != "X" || !errors.Is(err, ErrInput) {
		t.Fatalf("%#v", err)
	}
	if got, want := err.Error(), `ort: inputs do not match the model: run m.onnx: "X": shape [1 2]`; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}
