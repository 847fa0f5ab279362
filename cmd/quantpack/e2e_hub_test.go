package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantpack/quantpack/hub"
	"github.com/quantpack/quantpack/hub/hubtest"
	"github.com/quantpack/quantpack/internal/manifest"
)

// testE2EHub runs `quantpack convert org/name` and friends against an
// in-process fake Hub through HF_ENDPOINT, with the cache in a temporary
// HF_HUB_CACHE.
func testE2EHub(t *testing.T, vit string) {
	const commit = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
	files := map[string][]byte{}
	for _, name := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(vit, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	files["README.md"] = []byte("---\nlicense: apache-2.0\ntags:\n- vision\n---\n# tiny ViT\n")
	files["pytorch_model.bin"] = []byte("a pickle: never fetched")
	h := hubtest.New()
	t.Cleanup(h.Close)
	h.Add("acme/tiny-vit", &hubtest.Repo{Commit: commit, Files: files})
	h.Add("acme/old", &hubtest.Repo{Commit: commit, Files: map[string][]byte{
		"config.json": files["config.json"], "pytorch_model.bin": []byte("pickle")}})
	h.Add("acme/broken", &hubtest.Repo{Commit: commit, Files: files})
	cache := t.TempDir()
	env := func(extra ...string) []string {
		return append([]string{"HF_ENDPOINT=" + h.URL, "HF_HUB_CACHE=" + cache, "HF_HOME=" + t.TempDir(),
			"HF_TOKEN=", "HF_HUB_OFFLINE="}, extra...)
	}
	dir := t.TempDir()

	t.Run("convert", func(t *testing.T) {
		out := filepath.Join(dir, "nf4")
		r := qpEnv(t, env(), "convert", "acme/tiny-vit", "-o", out, "--precision", "nf4").ok(t)
		if !bytes.Contains(r.stdout, []byte("acme/tiny-vit@"+commit[:12]+" → ")) {
			t.Errorf("summary does not name the Hub source:\n%s", r.stdout)
		}
		var m struct {
			Hub   *hub.Source     `json:"hub"`
			Files []manifest.File `json:"files"`
		}
		b, err := os.ReadFile(filepath.Join(out, "quantpack.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Hub == nil || m.Hub.Repo != "acme/tiny-vit" || m.Hub.Revision != "main" || m.Hub.Commit != commit {
			t.Fatalf("manifest hub = %+v", m.Hub)
		}
		if f := m.Hub.File("model.safetensors"); f == nil || f.SHA256 != hubtest.SHA256(files["model.safetensors"]) {
			t.Errorf("weights record %+v", f)
		}
		card, err := os.ReadFile(filepath.Join(out, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"base_model: acme/tiny-vit\n", "license: apache-2.0\n", "tags:\n- quantpack\n- nf4\n", "library_name: transformers\n", commit} {
			if !bytes.Contains(card, []byte(want)) {
				t.Errorf("model card lacks %q:\n%s", want, card)
			}
		}
		var listed bool
		for _, f := range m.Files {
			listed = listed || f.Path == "README.md"
		}
		if !listed {
			t.Error("README.md not in the manifest's file list")
		}
		qp(t, "check", out).ok(t)
		link, err := os.Readlink(filepath.Join(cache, "models--acme--tiny-vit/snapshots", commit, "model.safetensors"))
		if err != nil || link != "../../blobs/"+hubtest.SHA256(files["model.safetensors"]) {
			t.Errorf("cache link %q %v", link, err)
		}
		for _, r := range h.Requests() {
			if strings.Contains(r, "pytorch_model.bin") {
				t.Errorf("fetched a pickle: %s", r)
			}
		}

		// Offline, from the cache: no request, the same bytes.
		n := len(h.Requests())
		out2 := filepath.Join(dir, "nf4-offline")
		qpEnv(t, env("HF_HUB_OFFLINE=1"), "convert", "acme/tiny-vit", "-o", out2, "--precision", "nf4").ok(t)
		if len(h.Requests()) != n {
			t.Errorf("offline convert made requests: %v", h.Requests()[n:])
		}
		for _, name := range []string{"quantpack.json", "README.md", "model.safetensors"} {
			a, _ := os.ReadFile(filepath.Join(out, name))
			b, _ := os.ReadFile(filepath.Join(out2, name))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs between the download and the cache hit", name)
			}
		}
	})

	t.Run("export-inspect", func(t *testing.T) {
		out := filepath.Join(dir, "onnx")
		qpEnv(t, env(), "export", "acme/tiny-vit@"+commit, "-o", out, "--precision", "int8").ok(t)
		card, _ := os.ReadFile(filepath.Join(out, "README.md"))
		if !bytes.Contains(card, []byte("library_name: onnx\n")) || !bytes.Contains(card, []byte("base_model: acme/tiny-vit\n")) {
			t.Errorf("export card:\n%s", card)
		}
		var m struct {
			Source struct {
				Hub *hub.Source `json:"hub"`
			} `json:"source"`
		}
		b, _ := os.ReadFile(filepath.Join(out, "quantpack.json"))
		if err := json.Unmarshal(b, &m); err != nil || m.Source.Hub == nil || m.Source.Hub.Commit != commit {
			t.Errorf("export manifest source.hub = %+v (%v)", m.Source.Hub, err)
		}
		qp(t, "check", out).ok(t)
		qpEnv(t, env("HF_HUB_OFFLINE=1"), "inspect", "acme/tiny-vit").ok(t)
	})

	t.Run("sigint-mid-download", func(t *testing.T) {
		// The CDN sends 40000 bytes of the weights and holds the rest, so
		// the signal lands mid-file whatever the machine's speed.
		h.Add("acme/slow", &hubtest.Repo{Commit: commit, Files: files})
		h.Configure(func() { h.Hold["model.safetensors"] = 40000 })
		out := filepath.Join(dir, "slow")
		blob := filepath.Join(cache, "models--acme--slow/blobs", hubtest.SHA256(files["model.safetensors"]))
		cmd := exec.Command(e2eBinary(t), "convert", "acme/slow", "-o", out, "--precision", "nf4")
		cmd.Env = e2eEnv(env()...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if fi, err := os.Stat(blob + ".incomplete"); err == nil && fi.Size() == 40000 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no partial blob after 30 s; stderr: %s", stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
			t.Fatalf("exit %v, want %d; stderr: %s", err, ExitInterrupted, stderr.String())
		}
		if fi, err := os.Stat(blob + ".incomplete"); err != nil || fi.Size() != 40000 {
			t.Errorf("partial blob not kept for resuming: %v %v", fi, err)
		}
		if _, err := os.Lstat(filepath.Join(cache, "models--acme--slow/snapshots", commit, "model.safetensors")); err == nil {
			t.Error("snapshot links the partial blob")
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("output written")
		}
		h.Configure(func() { delete(h.Hold, "model.safetensors") })
		n := len(h.Requests())
		qpEnv(t, env(), "convert", "acme/slow", "-o", out, "--precision", "nf4").ok(t)
		var resumed bool
		for _, r := range h.Requests()[n:] {
			resumed = resumed || strings.HasSuffix(r, "Range=bytes=40000-")
		}
		if !resumed {
			t.Errorf("second run did not resume: %v", h.Requests()[n:])
		}
	})

	t.Run("errors", func(t *testing.T) {
		// A flag mistake is reported before any download.
		n := len(h.Requests())
		qpEnv(t, env(), "convert", "acme/broken", "-o", filepath.Join(dir, "x0"), "--precision", "nf4", "--block-size", "7").wantCode(t, ExitUsage, "block-size")
		qpEnv(t, env(), "export", "acme/broken", "-o", filepath.Join(dir, "x0"), "--int8-mode", "fast").wantCode(t, ExitUsage, "int8-mode")
		if len(h.Requests()) != n {
			t.Errorf("a usage error made requests: %v", h.Requests()[n:])
		}
		qpEnv(t, env(), "convert", "acme/old", "-o", filepath.Join(dir, "x1"), "--precision", "nf4").wantCode(t, ExitUnsupported, "pytorch_model.bin")
		qpEnv(t, env(), "convert", "acme/nope", "-o", filepath.Join(dir, "x2"), "--precision", "nf4").wantCode(t, ExitInvalid, "acme/nope", "HF_TOKEN")
		qpEnv(t, env(), "convert", "acme/tiny-vit@v9", "-o", filepath.Join(dir, "x3"), "--precision", "nf4").wantCode(t, ExitInvalid, "revision not found")
		qpEnv(t, env("HF_ENDPOINT=ftp://mirror.example"), "convert", "acme/broken", "-o", filepath.Join(dir, "x4"), "--precision", "nf4").wantCode(t, ExitUsage, "HF_ENDPOINT")
		qpEnv(t, env("HF_HUB_OFFLINE=1"), "convert", "acme/broken", "-o", filepath.Join(dir, "x5"), "--precision", "nf4").wantCode(t, ExitOther, "offline", cache)
		h.Configure(func() { h.Corrupt["model.safetensors"] = true })
		qpEnv(t, env(), "convert", "acme/broken", "-o", filepath.Join(dir, "x6"), "--precision", "nf4").wantCode(t, ExitInvalid, "checksum mismatch")
		h.Configure(func() { h.Corrupt["model.safetensors"] = false })
		for i := 1; i <= 6; i++ {
			if _, err := os.Stat(filepath.Join(dir, "x"+string(rune('0'+i)))); err == nil {
				t.Errorf("x%d written after an error", i)
			}
		}
	})
}
