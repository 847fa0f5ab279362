package ort

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EnvLibraryPath names the environment variable that points at the ONNX
// Runtime shared library (the same one onnxruntime_go's examples use).
const EnvLibraryPath = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// repoLibrary is where `make ort` puts the library, relative to the root of
// a quantpack checkout.
var repoLibrary = filepath.Join("third_party", "ort", "libonnxruntime.so.1")

// LibraryPath resolves the ONNX Runtime shared library: explicit if it is
// not empty, else $ONNXRUNTIME_SHARED_LIBRARY_PATH, else the copy `make ort`
// keeps in third_party/ort/ of the checkout found by walking up from the
// executable's folder and then from the working directory. The file must
// exist; otherwise the error wraps ErrUnavailable and says how to fix it.
func LibraryPath(explicit string) (string, error) {
	if explicit != "" {
		return existing(explicit, "--ort-lib")
	}
	if p := os.Getenv(EnvLibraryPath); p != "" {
		return existing(p, "$"+EnvLibraryPath)
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		if p, ok := findUp(dir); ok {
			return p, nil
		}
	}
	return "", errorf(ErrUnavailable, "find library", "", "",
		"no path given, $%s unset, and no %s above the executable or the working directory; %s",
		EnvLibraryPath, repoLibrary, fixHint)
}

// existing returns p if it names a regular file; from says where p came
// from ("--ort-lib", "$ONNXRUNTIME_SHARED_LIBRARY_PATH").
func existing(p, from string) (string, error) {
	st, err := os.Stat(p)
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file")
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", errorf(ErrUnavailable, "find library", p, "", "%s: %v; %s", from, err, fixHint)
	}
	return p, nil
}

// findUp looks for repoLibrary in dir and its parents.
func findUp(dir string) (string, bool) {
	dir = filepath.Clean(dir)
	for {
		p := filepath.Join(dir, repoLibrary)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
