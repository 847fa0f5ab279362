package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/bundle"
)

func TestRunCheckDirDifferences(t *testing.T) {
	dir := bundleArtifact(t)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["Other"]}`), 0o644)
	os.Remove(filepath.Join(dir, "sub", "extra.bin"))
	var buf bytes.Buffer
	err := runCheck(context.Background(), checkOptions{Path: dir, JSON: true}, &buf)
	if !errors.Is(err, bundle.ErrMismatch) || exitCode(err) != ExitInvalid {
		t.Fatalf("err = %v (exit %d), want a mismatch (exit 3)", err, exitCode(err))
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, buf.String())
	}
	diffs, _ := got["differences"].([]any)
	if got["ok"] != false || got["kind"] != "dir" || len(diffs) != 2 || got["error"] != nil {
		t.Errorf("check --json = %s", buf.String())
	}

	buf.Reset()
	runCheck(context.Background(), checkOptions{Path: dir}, &buf)
	if !strings.Contains(buf.String(), "sub/extra.bin: missing") || !strings.Contains(buf.String(), "config.json: size") {
		t.Errorf("text output %q does not list the differences", buf.String())
	}
}

func TestRunCheckCorruptBundleJSON(t *testing.T) {
	file := filepath.Join(t.TempDir(), "junk.tar.zst")
	os.WriteFile(file, []byte("not a bundle at all"), 0o644)
	var buf bytes.Buffer
	err := runCheck(context.Background(), checkOptions{Path: file, JSON: true}, &buf)
	if !errors.Is(err, bundle.ErrCorrupt) || exitCode(err) != ExitInvalid {
		t.Fatalf("err = %v (exit %d), want ErrCorrupt (exit 3)", err, exitCode(err))
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["ok"] != false || got["kind"] != "bundle" || got["error"] == nil {
		t.Errorf("check --json = %s", buf.String())
	}
}
