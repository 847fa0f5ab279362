package hub

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options control Resolve. Zero values mean: what the environment says
// (the same variables huggingface_hub reads), else the defaults below.
type Options struct {
	Endpoint   string        // default $HF_ENDPOINT, else DefaultEndpoint
	CacheDir   string        // default CacheDir()
	Token      string        // default $HF_TOKEN, else the token file of `hf auth login`
	Offline    bool          // never touch the network; also set by HF_HUB_OFFLINE=1
	Workers    int           // files downloaded at once; default 4
	Retries    int           // retries of a failed request or cut download; default 5, negative for none
	Backoff    time.Duration // first wait before a retry, doubling; default 500 ms
	Timeout    time.Duration // response-header and stalled-body timeout; default 60 s
	HTTPClient *http.Client  // default: a clone of http.DefaultTransport
	// Progress, when set, is called with the bytes done and the bytes known
	// so far (the total grows as files are looked up), from several
	// goroutines one at a time.
	Progress func(done, total int64)
}

func (o *Options) defaults() {
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.CacheDir == "" {
		o.CacheDir = CacheDir()
	}
	if o.Token == "" && !envTrue("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
		o.Token = tokenFromEnv()
	}
	o.Offline = o.Offline || envTrue("HF_HUB_OFFLINE")
	if o.Workers <= 0 {
		o.Workers = 4
	}
	switch {
	case o.Retries == 0:
		o.Retries = 5
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
}

// Resolve turns a command's SRC into a local path. An existing local path is
// returned unchanged, with a nil Source unless it is a snapshot directory of
// the Hugging Face cache (then it is described like the id); anything that is
// not a Hub id is returned unchanged with a nil Source (the caller reports it
// missing). An id org/name[@revision] is served
// from the Hugging Face cache when the snapshot holds everything quantpack
// reads (no request is made), else downloaded into that cache; the result is
// the snapshot directory and a Source recording the commit and every file's
// sha256.
func Resolve(ctx context.Context, src string, opt Options) (string, *Source, error) {
	if _, err := os.Stat(src); err == nil {
		return src, snapshotSource(src), nil
	}
	ref, ok := ParseRef(src)
	if !ok {
		return src, nil, nil
	}
	opt.defaults()
	rc := newRepoCache(opt.CacheDir, ref.Repo)
	commit, cached := rc.commitFor(ref.Revision)
	if cached {
		st, err := rc.inspect(ref.Repo, commit)
		if err != nil {
			return "", nil, err
		}
		if len(st.missing) == 0 && (len(st.missingOptional) == 0 || opt.Offline) {
			s, err := recordAll(rc, ref, commit, st.present)
			return rc.snapshot(commit), s, err
		}
		if opt.Offline {
			return "", nil, &Error{Repo: ref.String(), Err: ErrOffline, Hint: fmt.Sprintf(
				"snapshot %s in %s lacks %s; run once online (unset HF_HUB_OFFLINE, drop --offline) to fetch it",
				commit, opt.CacheDir, strings.Join(st.missing, ", "))}
		}
	} else if opt.Offline {
		return "", nil, &Error{Repo: ref.String(), Err: ErrOffline, Hint: fmt.Sprintf(
			"no snapshot of revision %q in %s; run once online (unset HF_HUB_OFFLINE, drop --offline) to fetch it",
			ref.Revision, opt.CacheDir)}
	}
	return download(ctx, ref, rc, &opt)
}

// snapshotSource recognises a local path that is a snapshot of the Hugging
// Face cache (<cache>/models--org--name/snapshots/<commit>, as transformers
// users often pass it) and describes it, so that its provenance is recorded
// as if the id had been given. Anything else yields nil.
func snapshotSource(p string) *Source {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil
	}
	commit := filepath.Base(abs)
	snaps := filepath.Dir(abs)
	folder := filepath.Base(filepath.Dir(snaps))
	rest, ok := strings.CutPrefix(folder, "models--")
	if !ok || filepath.Base(snaps) != "snapshots" || !commitHash.MatchString(commit) {
		return nil
	}
	ref, ok := ParseRef(strings.Replace(rest, "--", "/", 1))
	if !ok || FolderName(ref.Repo) != folder {
		return nil
	}
	rc := newRepoCache(filepath.Dir(filepath.Dir(snaps)), ref.Repo)
	st, err := rc.inspect(ref.Repo, commit)
	if err != nil || len(st.missing) > 0 {
		return nil
	}
	ref.Revision = rc.revisionOf(commit)
	s, err := recordAll(rc, ref, commit, st.present)
	if err != nil {
		return nil
	}
	return s
}

// recordAll describes files already in a snapshot.
func recordAll(rc *repoCache, ref Ref, commit string, files []string) (*Source, error) {
	s := &Source{Repo: ref.Repo, Revision: ref.Revision, Commit: commit}
	for _, f := range files {
		r, err := rc.record(commit, f)
		if err != nil {
			return nil, err
		}
		s.Files = append(s.Files, r)
	}
	return s, nil
}

// download resolves the revision on the Hub and fetches the files quantpack
// reads, a few at a time.
func download(ctx context.Context, ref Ref, rc *repoCache, opt *Options) (string, *Source, error) {
	c, err := newClient(opt.Endpoint, opt.Token, opt)
	if err != nil {
		return "", nil, err
	}
	info, err := c.revision(ctx, ref)
	if err != nil {
		return "", nil, err
	}
	commit := info.SHA
	have := map[string]bool{}
	for _, s := range info.Siblings {
		have[s.RFilename] = true
	}
	weights, err := chooseWeights(ref.Repo, have)
	if err != nil {
		return "", nil, err
	}
	if err := rc.writeRef(ref.Revision, commit); err != nil {
		return "", nil, err
	}
	want := []string{weights}
	if have[FileConfig] {
		want = append(want, FileConfig)
	} else if err := rc.markAbsent(commit, FileConfig); err != nil {
		return "", nil, err
	}
	for _, f := range optionalFiles {
		if have[f] {
			want = append(want, f)
		} else if err := rc.markAbsent(commit, f); err != nil {
			return "", nil, err
		}
	}
	d := &downloader{c: c, rc: rc, repo: ref.Repo, commit: commit, prog: &progress{fn: opt.Progress}}
	var mu sync.Mutex
	var got []File
	run := func(files []string) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(opt.Workers)
		for _, f := range files {
			g.Go(func() error {
				r, err := d.fetch(gctx, f)
				if err != nil {
					return err
				}
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				return nil
			})
		}
		err := g.Wait()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if err := run(want); err != nil {
		return "", nil, err
	}
	if weights == FileIndex {
		shards, err := indexShards(ref.Repo, rc.pointer(commit, FileIndex))
		if err != nil {
			return "", nil, err
		}
		for _, s := range shards {
			if !have[s] {
				return "", nil, &Error{Repo: ref.Repo, File: FileIndex, Err: fmt.Errorf("%w: shard %s is not in the repository", ErrBadResponse, s)}
			}
		}
		if err := run(shards); err != nil {
			return "", nil, err
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Path < got[j].Path })
	return rc.snapshot(commit), &Source{Repo: ref.Repo, Revision: ref.Revision, Commit: commit, Files: got}, nil
}
