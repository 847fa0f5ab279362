package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/verify/ort"
)

// The end-to-end tests exec a real quantpack binary built once per test
// process, so that exit codes, signals, stdout/stderr and the files left on
// disk are observed exactly as a user or a CI job sees them.

var e2eBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// e2eBinary builds ./cmd/quantpack into a temporary directory the first time
// it is called and returns the binary's path. The directory is removed by
// e2eCleanup (called from TestE2E, which owns every e2e subtest).
func e2eBinary(t testing.TB) string {
	t.Helper()
	e2eBuild.once.Do(func() {
		// go test puts its own GOROOT/bin first on PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			e2eBuild.err = err
			return
		}
		dir, err := os.MkdirTemp("", "quantpack-e2e-")
		if err != nil {
			e2eBuild.err = err
			return
		}
		e2eBuild.dir = dir
		bin := filepath.Join(dir, "quantpack")
		cmd := exec.Command(goTool, "build", "-o", bin, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			e2eBuild.err = errors.New("go build: " + err.Error() + "\n" + string(out))
			return
		}
		e2eBuild.bin = bin
	})
	if e2eBuild.err != nil {
		t.Fatalf("building quantpack: %v", e2eBuild.err)
	}
	return e2eBuild.bin
}

func e2eCleanup() {
	if e2eBuild.dir != "" {
		os.RemoveAll(e2eBuild.dir)
	}
}

// e2eResult is what one run of the binary produced.
type e2eResult struct {
	args   []string
	code   int
	stdout []byte
	stderr string
}

// e2eEnv is the environment of every child: the ONNX Runtime library the
// test process would use (so a binary in a temp dir still finds `make ort`'s
// copy), no terminal progress bars, and any extra KEY=VALUE pairs.
func e2eEnv(extra ...string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra)+1)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, ort.EnvLibraryPath+"=") || strings.HasPrefix(kv, envTestMain+"=") {
			continue
		}
		env = append(env, kv)
	}
	if lib, err := ort.LibraryPath(""); err == nil {
		if abs, err := filepath.Abs(lib); err == nil {
			env = append(env, ort.EnvLibraryPath+"="+abs)
		}
	}
	// Later entries win in os/exec, so extra can override the library path.
	return append(env, extra...)
}

// qp runs the binary with args (environment e2eEnv()) and returns the result.
// A run that does not finish in two minutes is a test failure, not a hang.
func qp(t testing.TB, args ...string) e2eResult {
	t.Helper()
	return qpEnv(t, nil, args...)
}

func qpEnv(t testing.TB, extraEnv []string, args ...string) e2eResult {
	t.Helper()
	return qpRun(t, "", extraEnv, args...)
}

// qpIn runs the binary with args in working directory dir.
func qpIn(t testing.TB, dir string, args ...string) e2eResult {
	t.Helper()
	return qpRun(t, dir, nil, args...)
}

func qpRun(t testing.TB, dir string, extraEnv []string, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(e2eBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = e2eEnv(extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start quantpack %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("quantpack %v did not finish in 2 minutes", args)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("quantpack %v: %v", args, err)
	}
	return e2eResult{args: args, code: code, stdout: stdout.Bytes(), stderr: stderr.String()}
}

// ok fails the test unless the run exited 0.
func (r e2eResult) ok(t testing.TB) e2eResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("quantpack %s: exit %d, want 0\nstderr: %s", strings.Join(r.args, " "), r.code, r.stderr)
	}
	return r
}

// wantCode checks the exit status and, when names are given, that stderr
// names each of them (the user-facing contract: the message says which file).
func (r e2eResult) wantCode(t testing.TB, code int, names ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("quantpack %s: exit %d, want %d\nstderr: %s", strings.Join(r.args, " "), r.code, code, r.stderr)
		return
	}
	for _, n := range names {
		if !strings.Contains(r.stderr, n) {
			t.Errorf("quantpack %s: stderr does not name %q\nstderr: %s", strings.Join(r.args, " "), n, r.stderr)
		}
	}
}

// json decodes stdout as one JSON object.
func (r e2eResult) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.stdout))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("quantpack %s: stdout is not one JSON object: %v\n%s", strings.Join(r.args, " "), err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("quantpack %s: more than one JSON value on stdout", strings.Join(r.args, " "))
	}
	return m
}

// jpath walks a decoded JSON object along keys ("a.b.c") and reports whether
// every member exists.
func jpath(m map[string]any, path string) (any, bool) {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// jnum returns the number at path, failing the test when it is absent or not
// a number.
func jnum(t testing.TB, m map[string]any, path string) float64 {
	t.Helper()
	v, ok := jpath(m, path)
	if !ok {
		t.Fatalf("JSON has no %q", path)
	}
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("JSON %q = %v (%T), want a number", path, v, v)
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatalf("JSON %q: %v", path, err)
	}
	return f
}

// treeHashes maps every regular file under dir (slash-separated relative
// path) to its sha256.
func treeHashes(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = fileHash(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileHash(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sameTree fails unless a and b hold the same files with the same bytes.
func sameTree(t testing.TB, a, b string) {
	t.Helper()
	ha, hb := treeHashes(t, a), treeHashes(t, b)
	// The provenance statement describes a bundle's files (unpack writes it
	// beside quantpack.json); it is not one of the artifact's files.
	delete(ha, manifest.ProvenanceName)
	delete(hb, manifest.ProvenanceName)
	if len(ha) == 0 {
		t.Fatalf("%s holds no files", a)
	}
	for _, k := range unionKeys(ha, hb) {
		if ha[k] != hb[k] {
			t.Errorf("%s differs: %s has %.12s, %s has %.12s", k, a, ha[k], b, hb[k])
		}
	}
}

func unionKeys(ms ...map[string]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// emptyParent fails unless dir holds nothing: no output and no temporary
// file or directory left by a failed or interrupted command.
func emptyParent(t testing.TB, dir, after string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("after %s: %s left behind in %s", after, e.Name(), dir)
	}
}

// dirWriters lists the commands that write a directory with -o, each with
// arguments that would succeed into an empty one (vit a checkpoint, bundle
// a bundle file): the tests of a refused -o run every one of them.
func dirWriters(vit, bundle string) [][]string {
	return [][]string{
		{"convert", vit, "--precision", "int8"},
		{"export", vit, "--precision", "fp32"},
		{"synth", "--preset", "deit-tiny-patch16-224"},
		{"unpack", bundle},
	}
}
