package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/hub/hubtest"
	"github.com/quantpack/quantpack/internal/fault"
)

func TestChecksumMismatch(t *testing.T) {
	for _, file := range []string{"model.safetensors", "config.json"} {
		t.Run(file, func(t *testing.T) {
			h := newHub(t)
			opt := testOptions(t, h)
			h.Corrupt[file] = true
			_, _, err := Resolve(context.Background(), testRepo, opt)
			if !errors.Is(err, ErrChecksum) || fault.ClassOf(err) != fault.Invalid {
				t.Fatalf("err = %v (class %v), want ErrChecksum (invalid, exit 3)", err, fault.ClassOf(err))
			}
			blobs, _ := os.ReadDir(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/blobs"))
			data := testFiles()[file]
			for _, b := range blobs {
				if strings.HasPrefix(b.Name(), hubtest.SHA256(data)) || strings.HasPrefix(b.Name(), hubtest.GitBlobSHA1(data)) {
					t.Errorf("blob kept after a checksum mismatch: %s", b.Name())
				}
			}
			if _, err := os.Lstat(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit, file)); err == nil {
				t.Error("corrupt file linked into the snapshot")
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(h *hubtest.Hub, o *Options)
		src    string
		want   error
		class  fault.Class
		hint   string
		maxReq int
	}{
		{name: "unknown repo", src: "acme/nope", want: ErrRepoNotFound, class: fault.Invalid, hint: "HF_TOKEN"},
		{name: "private without token", src: "acme/private", want: ErrRepoNotFound, class: fault.Invalid, hint: "--token"},
		{name: "gated without token", src: "acme/gated", want: ErrForbidden, class: fault.Other, hint: "accept its terms"},
		{name: "gated wrong token", src: "acme/gated", want: ErrForbidden, class: fault.Other, hint: "accept its terms",
			setup: func(_ *hubtest.Hub, o *Options) { o.Token = "hf_wrong" }},
		{name: "401", src: testRepo, want: ErrUnauthorized, class: fault.Other, hint: "HF_TOKEN",
			setup: func(h *hubtest.Hub, _ *Options) { h.Status, h.StatusTimes = 401, 99 }},
		{name: "403 with token", src: testRepo, want: ErrForbidden, class: fault.Other, hint: "may not read",
			setup: func(h *hubtest.Hub, o *Options) { h.Status, h.StatusTimes, o.Token = 403, 99, "hf_x" }},
		{name: "404", src: testRepo, want: ErrRepoNotFound, class: fault.Invalid,
			setup: func(h *hubtest.Hub, _ *Options) { h.Status, h.StatusTimes = 404, 99 }},
		{name: "429 every time", src: testRepo, want: ErrRateLimited, class: fault.Other, maxReq: 3,
			setup: func(h *hubtest.Hub, _ *Options) { h.Status, h.StatusTimes = 429, 99 }},
		{name: "503 every time", src: testRepo, want: ErrServer, class: fault.Other, maxReq: 3,
			setup: func(h *hubtest.Hub, _ *Options) { h.Status, h.StatusTimes = 503, 99 }},
		{name: "revision", src: testRepo + "@v9", want: ErrRevisionNotFound, class: fault.Invalid, hint: "branch, tag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHub(t)
			h.Add("acme/private", &hubtest.Repo{Commit: testCommit, Files: testFiles(), Private: true})
			h.Add("acme/gated", &hubtest.Repo{Commit: testCommit, Files: testFiles(), Gated: true})
			opt := testOptions(t, h)
			if c.setup != nil {
				c.setup(h, &opt)
			}
			_, _, err := Resolve(context.Background(), c.src, opt)
			if !errors.Is(err, c.want) || fault.ClassOf(err) != c.class {
				t.Fatalf("err = %v (class %v), want %v (class %v)", err, fault.ClassOf(err), c.want, c.class)
			}
			if !strings.Contains(err.Error(), c.hint) {
				t.Errorf("message %q does not say %q", err, c.hint)
			}
			if c.maxReq > 0 && len(h.Requests()) != c.maxReq {
				t.Errorf("%d requests, want %d (1 + 2 retries)", len(h.Requests()), c.maxReq)
			}
			if ents, _ := os.ReadDir(filepath.Join(opt.CacheDir, "models--"+strings.ReplaceAll(strings.Split(c.src, "@")[0], "/", "--"), "snapshots")); len(ents) != 0 {
				t.Errorf("snapshot written after an error")
			}
		})
	}
}

func TestPrivateWithToken(t *testing.T) {
	h := newHub(t)
	h.Add("acme/gated", &hubtest.Repo{Commit: testCommit, Files: testFiles(), Gated: true})
	opt := testOptions(t, h)
	t.Setenv("HF_TOKEN", h.Token) // the environment supplies it
	if _, _, err := Resolve(context.Background(), "acme/gated", opt); err != nil {
		t.Fatal(err)
	}
	if a := h.CDNAuth(); len(a) != 0 {
		t.Errorf("token sent to the CDN: %v", a)
	}
}

func TestRateLimitThenSuccess(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	h.Status, h.StatusTimes = 429, 2
	if _, _, err := Resolve(context.Background(), testRepo, opt); err != nil {
		t.Fatalf("two 429s then OK with 2 retries: %v", err)
	}
}

// TestDiskFull writes the blob into /dev/full (the partial blob is made a
// link to it): the error names the file and the cause, is not retried, and
// nothing is linked.
func TestDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	h := newHub(t)
	opt := testOptions(t, h)
	w := testFiles()["model.safetensors"]
	blobs := filepath.Join(opt.CacheDir, "models--acme--tiny-vit/blobs")
	os.MkdirAll(blobs, 0o755)
	if err := os.Symlink("/dev/full", filepath.Join(blobs, hubtest.SHA256(w)+".incomplete")); err != nil {
		t.Fatal(err)
	}
	_, _, err := Resolve(context.Background(), testRepo, opt)
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("err = %v", err)
	}
	gets := 0
	for _, r := range h.Requests() {
		if strings.HasPrefix(r, "GET /acme/tiny-vit/"+hubtest.SHA256(w)) {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("%d GETs of the weights, want 1 (a full disk is not retried)", gets)
	}
	if _, err := os.Lstat(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit, "model.safetensors")); err == nil {
		t.Error("linked after a write failure")
	}
}
