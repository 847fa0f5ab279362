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
	"github.com/quantpack/quantpack/internal/manifest"
)

// bundleArtifact writes a small artifact with an exact quantpack.json, the
// way convert leaves one, and returns its directory.
func bundleArtifact(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "art")
	files := map[string][]byte{
		"model.safetensors": bytes.Repeat([]byte{0x3c, 0x00, 0xbc, 0x01}, 50_000),
		"config.json":       []byte(`{"architectures":["ViTForImageClassification"]}`),
		"sub/extra.bin":     {1, 2, 3},
	}
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list, err := manifest.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{"tool_version": "test", "precision": "fp16", "files": list}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, manifest.Name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRunPackJSON(t *testing.T) {
	dir := bundleArtifact(t)
	out := filepath.Join(t.TempDir(), "a.tar.zst")
	var buf bytes.Buffer
	if err := runPack(context.Background(), packOptions{Dir: dir, Output: out, JSON: true}, &buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, buf.String())
	}
	// The schema in the command help, member by member.
	for _, k := range []string{"bundle", "sha256", "bytes", "raw_bytes", "ratio", "files", "level", "manifest", "format_version"} {
		if _, ok := got[k]; !ok {
			t.Errorf("pack --json lacks %q: %s", k, buf.String())
		}
	}
	st, _ := os.Stat(out)
	if got["bytes"] != float64(st.Size()) || got["files"] != float64(5) || got["manifest"] != "stored" || got["level"] != "fastest+lit" {
		t.Errorf("pack --json = %s", buf.String())
	}

	buf.Reset()
	if err := runPack(context.Background(), packOptions{Dir: dir, Output: out + "2", Level: "best"}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level best") {
		t.Errorf("text output %q does not name the level", buf.String())
	}
}

func TestRunPackUsage(t *testing.T) {
	dir := bundleArtifact(t)
	err := runPack(context.Background(), packOptions{Dir: dir, Output: filepath.Join(t.TempDir(), "x"), Level: "ultra"}, &bytes.Buffer{})
	if exitCode(err) != ExitUsage {
		t.Errorf("bad level: %v (exit %d), want usage", err, exitCode(err))
	}
	err = runPack(context.Background(), packOptions{Dir: filepath.Join(dir, "config.json"), Output: filepath.Join(t.TempDir(), "x")}, &bytes.Buffer{})
	if exitCode(err) != ExitUsage {
		t.Errorf("file as DIR: %v (exit %d), want usage", err, exitCode(err))
	}
	err = runPack(context.Background(), packOptions{Dir: dir, Output: filepath.Join(dir, "in.tar.zst")}, &bytes.Buffer{})
	if !errors.Is(err, bundle.ErrOutputInside) || exitCode(err) != ExitUsage {
		t.Errorf("output inside DIR: %v (exit %d), want usage", err, exitCode(err))
	}
}

// Through the whole CLI: pack, check, unpack succeed (exit 0); a bundle
// with one flipped byte is refused by check and unpack (exit 3); unpack
// into a non-empty directory is a usage error (exit 2).
func TestBundleCommandsExitCodes(t *testing.T) {
	dir := bundleArtifact(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a.tar.zst")
	steps := []struct {
		args []string
		want int
	}{
		{[]string{"pack", dir, "-o", file}, ExitOK},
		{[]string{"check", file}, ExitOK},
		{[]string{"check", dir, "--json"}, ExitOK},
		{[]string{"unpack", file, "-o", filepath.Join(tmp, "out")}, ExitOK},
		{[]string{"check", filepath.Join(tmp, "out")}, ExitOK},
		{[]string{"unpack", file, "-o", filepath.Join(tmp, "out")}, ExitUsage}, // not empty now
		{[]string{"unpack", file, "-o", filepath.Join(tmp, "out2"), "--max-bytes", "1KiB"}, ExitInvalid},
		{[]string{"unpack", file, "-o", filepath.Join(tmp, "out2"), "--max-bytes", "lots"}, ExitUsage},
	}
	for _, s := range steps {
		if got := run(append([]string{"quantpack"}, s.args...)); got != s.want {
			t.Errorf("quantpack %s: exit %d, want %d", strings.Join(s.args, " "), got, s.want)
		}
	}
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 0x10
	bad := filepath.Join(tmp, "bad.tar.zst")
	os.WriteFile(bad, b, 0o644)
	for _, args := range [][]string{{"check", bad}, {"unpack", bad, "-o", filepath.Join(tmp, "out3")}} {
		if got := run(append([]string{"quantpack"}, args...)); got != ExitInvalid {
			t.Errorf("quantpack %s: exit %d, want %d", strings.Join(args, " "), got, ExitInvalid)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "out3")); !os.IsNotExist(err) {
		t.Errorf("refused unpack left %s behind", filepath.Join(tmp, "out3"))
	}
}

// Issue 17 case 6: check flags a flipped byte (exit 3) and pack now refuses
// the same artifact (exit 3, no bundle) instead of packing it under fresh
// hashes; --rehash packs it as it is, saying the manifest was rewritten.
func TestPackRefusesCorruptArtifact(t *testing.T) {
	dir := bundleArtifact(t)
	p := filepath.Join(dir, "model.safetensors")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0x01
	os.WriteFile(p, b, 0o644)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a.tar.zst")
	for _, args := range [][]string{{"check", dir}, {"pack", dir, "-o", file}} {
		if got := run(append([]string{"quantpack"}, args...)); got != ExitInvalid {
			t.Errorf("quantpack %s: exit %d, want %d", strings.Join(args, " "), got, ExitInvalid)
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("refused pack left %d entries in %s", len(ents), tmp)
	}
	var out bytes.Buffer
	if err := runPack(context.Background(), packOptions{Dir: dir, Output: file, Level: "auto", JSON: true, Rehash: true}, &out); err != nil {
		t.Fatal(err)
	}
	var res bundle.PackResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Manifest != "rewritten" {
		t.Errorf("--rehash: manifest %q (%v), want rewritten", res.Manifest, err)
	}
}
