package hub

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseRef(t *testing.T) {
	cases := []struct {
		in       string
		ok       bool
		repo     string
		revision string
	}{
		{"google/vit-base-patch16-224", true, "google/vit-base-patch16-224", "main"},
		{"facebook/dinov2-small@v1.0", true, "facebook/dinov2-small", "v1.0"},
		{"org/name@refs/pr/3", true, "org/name", "refs/pr/3"},
		{"org/name@0123456789abcdef0123456789abcdef01234567", true, "org/name", "0123456789abcdef0123456789abcdef01234567"},
		{"vit-base", false, "", ""},
		{"./org/name", false, "", ""},
		{"/abs/path", false, "", ""},
		{"org/name/extra", false, "", ""},
		{"org/../name", false, "", ""},
		{"org--x/name", false, "", ""},
		{"org/name@", false, "", ""},
		{"org/name@../x", false, "", ""},
		{"org/name@a b", false, "", ""},
		{"-org/name", false, "", ""},
		{"model.safetensors", false, "", ""},
	}
	for _, c := range cases {
		r, ok := ParseRef(c.in)
		if ok != c.ok || r.Repo != c.repo || r.Revision != c.revision {
			t.Errorf("ParseRef(%q) = %+v %v, want %s %s %v", c.in, r, ok, c.repo, c.revision, c.ok)
		}
	}
}

func TestCacheDirOrder(t *testing.T) {
	home, _ := os.UserHomeDir()
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"} {
		t.Setenv(k, "")
	}
	if got, want := CacheDir(), filepath.Join(home, ".cache/huggingface/hub"); got != want {
		t.Errorf("default %s, want %s", got, want)
	}
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got := CacheDir(); got != "/x/huggingface/hub" {
		t.Errorf("XDG: %s", got)
	}
	t.Setenv("HF_HOME", "~/hf")
	if got := CacheDir(); got != filepath.Join(home, "hf/hub") {
		t.Errorf("HF_HOME: %s", got)
	}
	t.Setenv("HF_HUB_CACHE", "/c")
	if got := CacheDir(); got != "/c" {
		t.Errorf("HF_HUB_CACHE: %s", got)
	}
}

func TestFolderName(t *testing.T) {
	if got := FolderName("julien-c/EsperBERTo-small"); got != "models--julien-c--EsperBERTo-small" {
		t.Error(got)
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"google/vit-base-patch16-224", "a/b@refs/pr/1", "a/b@v1", "../x", "a/b@.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := ParseRef(s)
		if !ok {
			return
		}
		// Whatever parses must stay inside the cache folder.
		base := "/cache/" + FolderName(r.Repo)
		for _, p := range []string{filepath.Join(base, "refs", r.Revision), base} {
			if rel, err := filepath.Rel("/cache", p); err != nil || rel == ".." || len(rel) >= 2 && rel[:3] == "../" {
				t.Fatalf("%q escapes the cache: %s", s, p)
			}
		}
		if filepath.Dir(base) != "/cache" {
			t.Fatalf("%q: folder %s is nested", s, base)
		}
	})
}

func FuzzIndexShards(f *testing.F) {
	f.Add([]byte(`{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../x.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "i.json")
		os.WriteFile(p, b, 0o644)
		shards, err := indexShards("r/x", p)
		if err != nil {
			return
		}
		for _, s := range shards {
			if !safeRepoPath(s) {
				t.Fatalf("unsafe shard %q accepted", s)
			}
		}
	})
}
