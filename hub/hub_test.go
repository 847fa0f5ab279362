package hub

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantpack/quantpack/hub/hubtest"
	"github.com/quantpack/quantpack/internal/fault"
)

const (
	testRepo   = "acme/tiny-vit"
	testCommit = "0123456789abcdef0123456789abcdef01234567"
)

// testFiles is a small repository: regular JSON files, an LFS weights file
// and files quantpack must not fetch.
func testFiles() map[string][]byte {
	w := make([]byte, 300_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	return map[string][]byte{
		"config.json":              []byte(`{"architectures":["ViTForImageClassification"]}` + "\n"),
		"preprocessor_config.json": []byte(`{"size":224}` + "\n"),
		"README.md":                []byte("---\nlicense: apache-2.0\n---\n# tiny\n"),
		"model.safetensors":        w,
		"pytorch_model.bin":        []byte("pickle, never fetched"),
		"tf_model.h5":              []byte("never fetched"),
	}
}

func newHub(t *testing.T) *hubtest.Hub {
	t.Helper()
	h := hubtest.New()
	t.Cleanup(h.Close)
	h.Add(testRepo, &hubtest.Repo{Commit: testCommit, Files: testFiles()})
	return h
}

// testOptions isolates a test from the machine's environment and makes
// retries fast.
func testOptions(t *testing.T, h *hubtest.Hub) Options {
	t.Helper()
	for _, k := range []string{"HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		t.Setenv(k, "")
	}
	t.Setenv("HF_HOME", t.TempDir())
	o := Options{CacheDir: t.TempDir(), Backoff: time.Millisecond, Retries: 2, Timeout: 10 * time.Second}
	if h != nil {
		o.Endpoint = h.URL
	}
	return o
}

// tree lists a directory the way `find -printf` would: one line per entry
// with its type, and a symlink's target or a file's size.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == ".":
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			fi, _ := d.Info()
			out = append(out, rel+" "+itoa(fi.Size()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestFirstDownloadLayout checks the cache byte for byte against the layout
// huggingface_hub writes for the same files (docs/hub.md says how the
// expected listing was derived).
func TestFirstDownloadLayout(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	dir, src, err := Resolve(context.Background(), testRepo, opt)
	if err != nil {
		t.Fatal(err)
	}
	files := testFiles()
	cfg, pre, card, w := files["config.json"], files["preprocessor_config.json"], files["README.md"], files["model.safetensors"]
	g := func(b []byte) string { return hubtest.GitBlobSHA1(b) }
	want := []string{
		".locks/",
		".locks/models--acme--tiny-vit/",
		".locks/models--acme--tiny-vit/" + g(card) + ".lock 0",
		".locks/models--acme--tiny-vit/" + g(cfg) + ".lock 0",
		".locks/models--acme--tiny-vit/" + g(pre) + ".lock 0",
		".locks/models--acme--tiny-vit/" + hubtest.SHA256(w) + ".lock 0",
		"models--acme--tiny-vit/",
		"models--acme--tiny-vit/blobs/",
		"models--acme--tiny-vit/blobs/" + g(card) + " " + itoa(int64(len(card))),
		"models--acme--tiny-vit/blobs/" + g(cfg) + " " + itoa(int64(len(cfg))),
		"models--acme--tiny-vit/blobs/" + g(pre) + " " + itoa(int64(len(pre))),
		"models--acme--tiny-vit/blobs/" + hubtest.SHA256(w) + " " + itoa(int64(len(w))),
		"models--acme--tiny-vit/refs/",
		"models--acme--tiny-vit/refs/main 40",
		"models--acme--tiny-vit/snapshots/",
		"models--acme--tiny-vit/snapshots/" + testCommit + "/",
		"models--acme--tiny-vit/snapshots/" + testCommit + "/README.md -> ../../blobs/" + g(card),
		"models--acme--tiny-vit/snapshots/" + testCommit + "/config.json -> ../../blobs/" + g(cfg),
		"models--acme--tiny-vit/snapshots/" + testCommit + "/model.safetensors -> ../../blobs/" + hubtest.SHA256(w),
		"models--acme--tiny-vit/snapshots/" + testCommit + "/preprocessor_config.json -> ../../blobs/" + g(pre),
	}
	sort.Strings(want)
	got := tree(t, opt.CacheDir)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cache layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b, _ := os.ReadFile(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/refs/main")); string(b) != testCommit {
		t.Errorf("refs/main = %q, want the commit without a newline", b)
	}
	if want := filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	for name, data := range map[string][]byte{"config.json": cfg, "model.safetensors": w} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s through the snapshot link: %v", name, err)
		}
	}
	if src.Repo != testRepo || src.Revision != "main" || src.Commit != testCommit || len(src.Files) != 4 {
		t.Fatalf("source = %+v", src)
	}
	for _, f := range src.Files {
		if f.SHA256 != hubtest.SHA256(files[f.Path]) || f.Size != int64(len(files[f.Path])) {
			t.Errorf("%s: recorded %+v", f.Path, f)
		}
	}
	for _, r := range h.Requests() {
		if strings.Contains(r, "pytorch_model.bin") || strings.Contains(r, "tf_model.h5") {
			t.Errorf("fetched a file quantpack does not read: %s", r)
		}
	}
	if a := h.CDNAuth(); len(a) != 0 {
		t.Errorf("token sent to the CDN: %v", a)
	}
}

// TestGitBlobSHA1 pins the git object id against git itself: `printf
// 'hello\n' | git hash-object --stdin` prints ce0136….
func TestGitBlobSHA1(t *testing.T) {
	hs := newHashes("ce013625030ba8dba906f756967f9e9ca394464a", 6)
	hs.Write([]byte("hello\n"))
	if bad := hs.check("ce013625030ba8dba906f756967f9e9ca394464a"); bad != "" {
		t.Fatal(bad)
	}
	if g := hubtest.GitBlobSHA1([]byte("hello\n")); g != "ce013625030ba8dba906f756967f9e9ca394464a" {
		t.Fatalf("fake hub's git id %s", g)
	}
}

func TestCacheHitMakesNoRequest(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	dir1, src1, err := Resolve(context.Background(), testRepo, opt)
	if err != nil {
		t.Fatal(err)
	}
	n := len(h.Requests())
	dir2, src2, err := Resolve(context.Background(), testRepo, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Requests()) != n {
		t.Errorf("cache hit made requests: %v", h.Requests()[n:])
	}
	if dir1 != dir2 || !sameSource(src1, src2) {
		t.Errorf("cache hit differs: %s %+v vs %s %+v", dir1, src1, dir2, src2)
	}
	// By commit hash, too.
	if _, _, err := Resolve(context.Background(), testRepo+"@"+testCommit, opt); err != nil || len(h.Requests()) != n {
		t.Errorf("commit cache hit: %v, %d requests", err, len(h.Requests())-n)
	}
}

func sameSource(a, b *Source) bool {
	if a.Repo != b.Repo || a.Commit != b.Commit || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	return true
}

// TestReadsHuggingFaceHubCache builds a cache the way huggingface_hub leaves
// it (including a transformers-written .no_exist marker) and resolves it
// offline.
func TestReadsHuggingFaceHubCache(t *testing.T) {
	opt := testOptions(t, nil)
	opt.Offline = true
	files := testFiles()
	repo := filepath.Join(opt.CacheDir, "models--acme--tiny-vit")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	snap := filepath.Join(repo, "snapshots", testCommit)
	must(os.MkdirAll(snap, 0o755))
	must(os.MkdirAll(filepath.Join(repo, "blobs"), 0o755))
	must(os.MkdirAll(filepath.Join(repo, "refs"), 0o755))
	must(os.MkdirAll(filepath.Join(repo, ".no_exist", testCommit), 0o755))
	must(os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(testCommit), 0o644))
	for _, name := range []string{"config.json", "model.safetensors", "preprocessor_config.json"} {
		etag := hubtest.GitBlobSHA1(files[name])
		if name == "model.safetensors" {
			etag = hubtest.SHA256(files[name])
		}
		must(os.WriteFile(filepath.Join(repo, "blobs", etag), files[name], 0o644))
		must(os.Symlink("../../blobs/"+etag, filepath.Join(snap, name)))
	}
	must(os.WriteFile(filepath.Join(repo, ".no_exist", testCommit, "README.md"), nil, 0o644))
	dir, src, err := Resolve(context.Background(), testRepo, opt)
	if err != nil {
		t.Fatal(err)
	}
	if dir != snap || src.Commit != testCommit || len(src.Files) != 3 {
		t.Fatalf("dir %s source %+v", dir, src)
	}
	if f := src.File("model.safetensors"); f == nil || f.SHA256 != hubtest.SHA256(files["model.safetensors"]) {
		t.Errorf("weights record %+v", f)
	}
}

func TestResumeAfterCutConnection(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	w := testFiles()["model.safetensors"]
	// The connection drops after 100000 bytes and retries are off: the run
	// fails, keeping the partial blob.
	h.CutAfter["model.safetensors"] = 100_000
	opt.Retries = -1
	_, _, err := Resolve(context.Background(), testRepo, opt)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	blob := filepath.Join(opt.CacheDir, "models--acme--tiny-vit/blobs", hubtest.SHA256(w))
	if fi, err := os.Stat(blob + ".incomplete"); err != nil || fi.Size() != 100_000 {
		t.Fatalf("partial blob: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit, "model.safetensors")); err == nil {
		t.Fatal("snapshot links an incomplete blob")
	}
	n := len(h.Requests())
	_, src, err := Resolve(context.Background(), testRepo, opt)
	if err != nil {
		t.Fatal(err)
	}
	var ranged bool
	for _, r := range h.Requests()[n:] {
		ranged = ranged || strings.HasSuffix(r, "Range=bytes=100000-")
	}
	if !ranged {
		t.Errorf("resume did not ask for the rest: %v", h.Requests()[n:])
	}
	if b, _ := os.ReadFile(blob); !bytes.Equal(b, w) {
		t.Error("resumed blob differs")
	}
	if _, err := os.Stat(blob + ".incomplete"); !errors.Is(err, fs.ErrNotExist) {
		t.Error(".incomplete left behind")
	}
	if f := src.File("model.safetensors"); f == nil || f.SHA256 != hubtest.SHA256(w) {
		t.Errorf("record %+v", f)
	}
}

func TestCutConnectionRetriedInOneRun(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	h.CutAfter["model.safetensors"] = 12345
	if _, _, err := Resolve(context.Background(), testRepo, opt); err != nil {
		t.Fatal(err)
	}
	var ranged bool
	for _, r := range h.Requests() {
		ranged = ranged || strings.HasSuffix(r, "Range=bytes=12345-")
	}
	if !ranged {
		t.Errorf("retry did not resume: %v", h.Requests())
	}
}

func TestOffline(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, _, err := Resolve(context.Background(), testRepo, opt)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), opt.CacheDir) {
		t.Fatalf("err = %v", err)
	}
	if n := len(h.Requests()); n != 0 {
		t.Fatalf("offline mode made %d requests", n)
	}
	// Online once, then offline works, also with optional files missing.
	t.Setenv("HF_HUB_OFFLINE", "")
	if _, _, err := Resolve(context.Background(), testRepo, opt); err != nil {
		t.Fatal(err)
	}
	n := len(h.Requests())
	os.Remove(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit, "README.md"))
	opt.Offline = true
	if _, src, err := Resolve(context.Background(), testRepo, opt); err != nil || src.File("README.md") != nil {
		t.Fatalf("offline with an optional file missing: %v", err)
	}
	// A missing required file is named.
	os.Remove(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit, "model.safetensors"))
	if _, _, err := Resolve(context.Background(), testRepo, opt); !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("err = %v", err)
	}
	if len(h.Requests()) != n {
		t.Fatal("offline mode made requests")
	}
}

func TestPickleOnlyRepo(t *testing.T) {
	h := newHub(t)
	h.Add("acme/old", &hubtest.Repo{Commit: testCommit, Files: map[string][]byte{
		"config.json": []byte("{}"), "pytorch_model.bin": []byte("pickle")}})
	opt := testOptions(t, h)
	_, _, err := Resolve(context.Background(), "acme/old", opt)
	if !errors.Is(err, ErrPickleOnly) || fault.ClassOf(err) != fault.Unsupported || !strings.Contains(err.Error(), "pytorch_model.bin") {
		t.Fatalf("err = %v (class %v)", err, fault.ClassOf(err))
	}
	if n := len(h.Requests()); n != 1 {
		t.Errorf("%d requests, want only the revision lookup: %v", n, h.Requests())
	}
}

func TestBadEndpoint(t *testing.T) {
	for _, ep := range []string{"ftp://mirror.example", "file:///tmp/hub", "mirror.example", "http://"} {
		opt := testOptions(t, nil)
		t.Setenv("HF_ENDPOINT", ep)
		_, _, err := Resolve(context.Background(), testRepo, opt)
		if !errors.Is(err, ErrEndpoint) || fault.ClassOf(err) != fault.Usage {
			t.Errorf("HF_ENDPOINT=%s: err = %v", ep, err)
		}
	}
}

// TestCancelMidDownload interrupts while the weights stream: the partial
// blob stays for the next run, nothing links to it, and the next run
// resumes it.
func TestCancelMidDownload(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	h.Hold["model.safetensors"] = 150_000
	ctx, cancel := context.WithCancel(context.Background())
	opt.Progress = func(done, total int64) {
		if done >= 150_000 {
			cancel()
		}
	}
	_, _, err := Resolve(ctx, testRepo, opt)
	if !errors.Is(err, context.Canceled) || fault.ClassOf(err) != fault.Interrupted {
		t.Fatalf("err = %v", err)
	}
	w := testFiles()["model.safetensors"]
	blob := filepath.Join(opt.CacheDir, "models--acme--tiny-vit/blobs", hubtest.SHA256(w))
	fi, err := os.Stat(blob + ".incomplete")
	if err != nil || fi.Size() == 0 || fi.Size() >= int64(len(w)) {
		t.Fatalf("partial blob after cancel: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(opt.CacheDir, "models--acme--tiny-vit/snapshots", testCommit, "model.safetensors")); err == nil {
		t.Fatal("snapshot links a partial blob")
	}
	close(h.Release)
	opt.Progress = nil
	n := len(h.Requests())
	if _, _, err := Resolve(context.Background(), testRepo, opt); err != nil {
		t.Fatal(err)
	}
	var ranged bool
	for _, r := range h.Requests()[n:] {
		ranged = ranged || strings.Contains(r, "Range=bytes="+itoa(fi.Size())+"-")
	}
	if !ranged {
		t.Errorf("no resume from %d: %v", fi.Size(), h.Requests()[n:])
	}
}

func TestShardedRepo(t *testing.T) {
	h := newHub(t)
	files := map[string][]byte{
		"config.json":                      []byte("{}"),
		"model.safetensors.index.json":     []byte(`{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`),
		"model-00001-of-00002.safetensors": bytes.Repeat([]byte{1}, 5000),
		"model-00002-of-00002.safetensors": bytes.Repeat([]byte{2}, 7000),
		"model-00009-of-00009.safetensors": []byte("not in the index: never fetched"),
	}
	h.Add("acme/sharded", &hubtest.Repo{Commit: testCommit, Files: files})
	opt := testOptions(t, h)
	dir, src, err := Resolve(context.Background(), "acme/sharded", opt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range src.Files {
		names = append(names, f.Path)
	}
	want := "config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json"
	if strings.Join(names, " ") != want {
		t.Errorf("files %v, want %s", names, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "model-00002-of-00002.safetensors")); len(b) != 7000 {
		t.Error("shard content")
	}
	// Absent optional files are remembered as huggingface_hub does.
	if _, err := os.Stat(filepath.Join(opt.CacheDir, "models--acme--sharded/.no_exist", testCommit, "preprocessor_config.json")); err != nil {
		t.Error(err)
	}
	n := len(h.Requests())
	if _, _, err := Resolve(context.Background(), "acme/sharded", opt); err != nil || len(h.Requests()) != n {
		t.Errorf("sharded cache hit: %v, %d requests", err, len(h.Requests())-n)
	}
}

func TestRevisionWithSlash(t *testing.T) {
	h := newHub(t)
	h.Add("acme/pr", &hubtest.Repo{Commit: testCommit, Files: testFiles(),
		Branches: map[string]string{"main": "1111111111111111111111111111111111111111", "refs/pr/1": testCommit}})
	opt := testOptions(t, h)
	_, src, err := Resolve(context.Background(), "acme/pr@refs/pr/1", opt)
	if err != nil {
		t.Fatal(err)
	}
	if src.Revision != "refs/pr/1" || src.Commit != testCommit {
		t.Errorf("source %+v", src)
	}
	b, err := os.ReadFile(filepath.Join(opt.CacheDir, "models--acme--pr/refs/refs/pr/1"))
	if err != nil || string(b) != testCommit {
		t.Errorf("refs/refs/pr/1: %q %v", b, err)
	}
	var escaped bool
	for _, r := range h.Requests() {
		escaped = escaped || strings.Contains(r, "/revision/refs%2Fpr%2F1")
	}
	if !escaped {
		t.Errorf("revision not escaped as one segment: %v", h.Requests())
	}
}

func TestLocalPathWins(t *testing.T) {
	opt := testOptions(t, nil)
	opt.Offline = true
	d := t.TempDir()
	local := filepath.Join(d, "acme", "tiny-vit")
	os.MkdirAll(local, 0o755)
	t.Chdir(d)
	dir, src, err := Resolve(context.Background(), "acme/tiny-vit", opt)
	if err != nil || dir != "acme/tiny-vit" || src != nil {
		t.Fatalf("local directory not used: %s %v %v", dir, src, err)
	}
	// Not an id and not a path: returned as is for the caller to report.
	if dir, src, err := Resolve(context.Background(), "./missing/dir/x", opt); err != nil || dir != "./missing/dir/x" || src != nil {
		t.Fatalf("got %s %v %v", dir, src, err)
	}
}

// TestSnapshotPathProvenance: a snapshot directory given as a local path is
// used as it is, and described as the Hub commit it is.
func TestSnapshotPathProvenance(t *testing.T) {
	h := newHub(t)
	opt := testOptions(t, h)
	dir, want, err := Resolve(context.Background(), testRepo, opt)
	if err != nil {
		t.Fatal(err)
	}
	n := len(h.Requests())
	got, src, err := Resolve(context.Background(), dir, opt)
	if err != nil || got != dir || src == nil || !sameSource(src, want) || src.Revision != "main" {
		t.Fatalf("snapshot path: %s %+v %v, want %+v", got, src, err, want)
	}
	if len(h.Requests()) != n {
		t.Error("a local snapshot path made requests")
	}
	// A directory that merely looks like one is not described.
	fake := filepath.Join(t.TempDir(), "models--a--b", "snapshots", testCommit)
	os.MkdirAll(fake, 0o755)
	if _, src, err := Resolve(context.Background(), fake, opt); err != nil || src != nil {
		t.Errorf("empty look-alike described: %+v %v", src, err)
	}
}
