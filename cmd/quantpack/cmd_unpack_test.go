package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/bundle"
)

func TestRunUnpackJSON(t *testing.T) {
	dir := bundleArtifact(t)
	file := filepath.Join(t.TempDir(), "a.tar.zst")
	if err := runPack(context.Background(), packOptions{Dir: dir, Output: file}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	var buf bytes.Buffer
	if err := runUnpack(context.Background(), unpackOptions{Bundle: file, Output: out, JSON: true}, &buf); err != nil {
		t.Fatal(err)
	}
	var got bundle.UnpackResult
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Files != 5 || !got.Provenance || got.Dir != out || got.FormatVersion != bundle.FormatVersion || got.ManifestRewritten {
		t.Errorf("unpack --json = %s", buf.String())
	}
	for _, p := range []string{"model.safetensors", "config.json", "sub/extra.bin", "quantpack.json"} {
		want, _ := os.ReadFile(filepath.Join(dir, p))
		have, _ := os.ReadFile(filepath.Join(out, p))
		if !bytes.Equal(want, have) {
			t.Errorf("%s differs after pack → unpack", p)
		}
	}
	err := runUnpack(context.Background(), unpackOptions{Bundle: file, Output: out}, &bytes.Buffer{})
	if !errors.Is(err, bundle.ErrOutputNotEmpty) || exitCode(err) != ExitUsage {
		t.Errorf("non-empty output: %v (exit %d)", err, exitCode(err))
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"123": 123, "64GiB": 64 << 30, "1 KiB": 1024, "5MB": 5e6, "2TB": 2e12, "7B": 7} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5GiB", "lots", "9999999999TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
