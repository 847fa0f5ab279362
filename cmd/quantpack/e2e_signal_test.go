package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interruptPresets are synthesized in turn until a conversion is still
// running when the signal lands: ViT-Base (330 MB) converts to nf4 on one
// thread in about a second here, so the second preset is only a fallback for
// a much faster machine.
var interruptPresets = []string{"vit-base-patch16-224", "vit-large-patch16-224"}

// testE2ESignals: SIGINT and SIGTERM in the middle of convert, export or pack
// exit 130 and leave neither the output nor any .tmp-* file
// (docs/reliability.md, "The rules").
func testE2ESignals(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: synthesizes a 330 MB checkpoint")
	}
	srcRoot := t.TempDir()
	var src string
	next := 0
	nextModel := func() bool {
		if next == len(interruptPresets) {
			return false
		}
		if src != "" {
			os.RemoveAll(src) // one big checkpoint on disk at a time
		}
		src = filepath.Join(srcRoot, interruptPresets[next])
		qp(t, "synth", "--preset", interruptPresets[next], "-o", src).ok(t)
		next++
		return true
	}
	if !nextModel() {
		t.Fatal("no preset")
	}
	// Convert under both signals; export and pack (one temp directory, one
	// temp file) under one each.
	cases := []struct {
		name string
		sig  syscall.Signal
		args func(src, out string) []string
	}{
		{"convert/SIGINT", syscall.SIGINT, func(src, out string) []string {
			return []string{"convert", src, "-o", out, "--precision", "nf4", "--threads", "1"}
		}},
		{"convert/SIGTERM", syscall.SIGTERM, func(src, out string) []string {
			return []string{"convert", src, "-o", out, "--precision", "nf4", "--threads", "1"}
		}},
		{"export/SIGINT", syscall.SIGINT, func(src, out string) []string {
			return []string{"export", src, "-o", out, "--precision", "int8"}
		}},
		{"pack/SIGTERM", syscall.SIGTERM, func(src, out string) []string {
			return []string{"pack", src, "-o", out}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for {
				if interrupt(t, c.args(src, filepath.Join(t.TempDir(), "out")), c.sig) {
					return
				}
				if !nextModel() {
					t.Skipf("every run finished before the %v landed (largest: %s); nothing to interrupt", c.sig, src)
				}
			}
		})
	}
}

// interrupt runs args (whose output, after -o, is in a fresh directory),
// waits until the temporary output appears beside it (the work is under way),
// sends sig and checks exit 130 and an empty parent directory. It returns
// false when the command finished before the signal.
func interrupt(t *testing.T, args []string, sig syscall.Signal) bool {
	t.Helper()
	parent := filepath.Dir(args[3])
	cmd := exec.Command(e2eBinary(t), args...)
	cmd.Env = e2eEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Poll for the temporary directory beside OUT. 30 s is far beyond any
	// start-up; reaching it means the conversion never began writing.
	var werr error
	finished := false
	deadline := time.Now().Add(30 * time.Second)
poll:
	for {
		select {
		case werr = <-done:
			finished = true
			break poll
		default:
		}
		if ents, _ := os.ReadDir(parent); len(ents) > 0 {
			break poll
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s wrote nothing in 30 s\nstderr: %s", args[0], stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	if !finished {
		// Let it get into the tensor stream, well short of the ≥ 1 s each
		// command takes on ViT-Base here.
		time.Sleep(50 * time.Millisecond)
		if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
		select {
		case werr = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s did not stop within 30 s of %v", args[0], sig)
		}
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	} else if werr != nil {
		t.Fatal(werr)
	}
	if code == 0 {
		t.Logf("%s of %s finished before %v; trying a bigger model", args[0], args[1], sig)
		return false
	}
	if code != ExitInterrupted {
		t.Errorf("%s interrupted by %v: exit %d, want %d\nstderr: %s", args[0], sig, code, ExitInterrupted, stderr.String())
	}
	if strings.Contains(stderr.String(), "panic") {
		t.Errorf("stderr shows a panic:\n%s", stderr.String())
	}
	emptyParent(t, parent, sig.String()+" during "+args[0])
	return true
}
