package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quantpack/quantpack/internal/version"
)

// Response headers the Hub sends on /resolve (huggingface_hub constants.py).
const (
	headerRepoCommit = "X-Repo-Commit"
	headerLinkedETag = "X-Linked-Etag"
	headerLinkedSize = "X-Linked-Size"
	headerErrorCode  = "X-Error-Code"
	headerErrorMsg   = "X-Error-Message"
)

// maxRevisionBytes caps the /api/models/.../revision answer; a repository
// listing of 10k files is about 1 MB.
const maxRevisionBytes = 32 << 20

// maxRetryAfter caps how long a 429's Retry-After may make us wait.
const maxRetryAfter = 60 * time.Second

// client speaks the Hub's HTTP endpoints with retries and backoff.
type client struct {
	endpoint string // no trailing slash
	host     string // the endpoint's host: the token goes nowhere else
	token    string
	http     *http.Client
	retries  int
	backoff  time.Duration
	idle     time.Duration // a body that sends nothing for this long is cut
}

func newClient(endpoint, token string, opt *Options) (*client, error) {
	ep, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(ep)
	hc := opt.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = opt.Timeout
		hc = &http.Client{Transport: tr}
	}
	// Redirects are followed by hand: relative ones (a renamed repository)
	// always, absolute ones (LFS files on a CDN) without the token.
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{endpoint: ep, host: u.Host, token: token, http: &c,
		retries: opt.Retries, backoff: opt.Backoff, idle: opt.Timeout}, nil
}

// request builds a request. Accept-Encoding is identity so that
// Content-Length and Range count the file's own bytes (huggingface_hub asks
// the same).
func (c *client) request(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "quantpack/"+version.Version)
	if c.token != "" && req.URL.Host == c.host {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// retryable reports responses worth another try: rate limits and server
// errors.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout ||
		status == http.StatusBadGateway || status == http.StatusServiceUnavailable ||
		status == http.StatusGatewayTimeout || status == http.StatusInternalServerError
}

// wait sleeps before retry number attempt (0-based): the backoff doubles
// from c.backoff up to 16×, or the server's Retry-After when it sent one.
func (c *client) wait(ctx context.Context, attempt int, resp *http.Response) error {
	d := c.backoff << min(attempt, 4)
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			d = min(time.Duration(s)*time.Second, maxRetryAfter)
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do sends a request built by mk, retrying network errors, 429 and 5xx. It
// returns the last response (the caller checks its status and closes it) or
// the last network error.
func (c *client) do(ctx context.Context, mk func() (*http.Request, error)) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := mk()
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if ctx.Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, ctx.Err()
		}
		if err == nil && !retryable(resp.StatusCode) {
			return resp, nil
		}
		if attempt >= c.retries {
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrServer, err)
			}
			return resp, nil
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := c.wait(ctx, attempt, resp); err != nil {
			return nil, err
		}
	}
}

// statusError turns an error response into an *Error saying what to do.
func (c *client) statusError(resp *http.Response, repo, file string) error {
	e := &Error{Repo: repo, File: file, URL: resp.Request.URL.Redacted(), Status: resp.StatusCode}
	code := resp.Header.Get(headerErrorCode)
	noToken := c.token == ""
	switch {
	case code == "RepoNotFound" || (code == "" && resp.StatusCode == http.StatusNotFound && file == ""):
		e.Err = ErrRepoNotFound
		e.Hint = "check the id on " + c.endpoint + "/" + repo
		if noToken {
			e.Hint += "; if the repository is private, set HF_TOKEN or pass --token"
		}
	case code == "RevisionNotFound":
		e.Err = ErrRevisionNotFound
		e.Hint = "name an existing branch, tag or full commit hash (see " + c.endpoint + "/" + repo + "/tree/main)"
	case code == "EntryNotFound" || resp.StatusCode == http.StatusNotFound:
		e.Err = ErrEntryNotFound
	case code == "GatedRepo":
		e.Err = ErrForbidden
		e.Hint = "the repository is gated: accept its terms on " + c.endpoint + "/" + repo + " and use a token of that account"
		if noToken {
			e.Hint += " (set HF_TOKEN or pass --token)"
		}
	case resp.StatusCode == http.StatusUnauthorized:
		e.Err = ErrUnauthorized
		if noToken {
			e.Hint = "the repository is private or gated: set HF_TOKEN or pass --token"
		} else {
			e.Hint = "the Hub rejected the token: check HF_TOKEN or --token"
		}
	case resp.StatusCode == http.StatusForbidden:
		e.Err = ErrForbidden
		e.Hint = "the token may not read " + repo + " (a gated repository needs its terms accepted on the model page)"
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Err = ErrRateLimited
		e.Hint = "wait and run again; a token raises the limit"
	case resp.StatusCode >= 500:
		e.Err = ErrServer
		e.Hint = "run again later"
	default:
		e.Err = ErrBadResponse
	}
	if m := resp.Header.Get(headerErrorMsg); m != "" && len(m) < 512 {
		e.Hint = strings.TrimSpace(m + "; " + e.Hint)
	}
	return e
}

// revisionInfo is the part of /api/models/{repo}/revision/{rev} we use.
type revisionInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

// revision resolves ref to a commit and lists the repository's files. The
// revision is escaped as one path segment ("refs/pr/1" → refs%2Fpr%2F1),
// as huggingface_hub's quote(revision, safe="") does.
func (c *client) revision(ctx context.Context, ref Ref) (*revisionInfo, error) {
	u := c.endpoint + "/api/models/" + ref.Repo + "/revision/" + url.PathEscape(ref.Revision)
	resp, err := c.do(ctx, func() (*http.Request, error) { return c.request(ctx, http.MethodGet, u) })
	if err != nil {
		return nil, &Error{Repo: ref.Repo, URL: u, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, ref.Repo, "")
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRevisionBytes+1))
	if err != nil {
		return nil, &Error{Repo: ref.Repo, URL: u, Err: fmt.Errorf("%w: %v", ErrServer, err)}
	}
	if len(b) > maxRevisionBytes {
		return nil, &Error{Repo: ref.Repo, URL: u, Err: fmt.Errorf("%w: answer over %d bytes", ErrBadResponse, maxRevisionBytes)}
	}
	var info revisionInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, &Error{Repo: ref.Repo, URL: u, Err: fmt.Errorf("%w: %v", ErrBadResponse, err)}
	}
	if !commitHash.MatchString(info.SHA) {
		return nil, &Error{Repo: ref.Repo, URL: u, Err: fmt.Errorf("%w: sha %q is not a commit hash", ErrBadResponse, info.SHA)}
	}
	return &info, nil
}

// resolveURL is where a file of a commit is served.
func (c *client) resolveURL(repo, commit, file string) string {
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.endpoint + "/" + repo + "/resolve/" + commit + "/" + strings.Join(segs, "/")
}

// fileMeta is what HEAD /{repo}/resolve/{commit}/{file} says of a file.
type fileMeta struct {
	commit   string // X-Repo-Commit
	etag     string // X-Linked-Etag (LFS: sha256) or ETag (git blob sha1), unquoted
	size     int64  // X-Linked-Size or Content-Length; -1 when unknown
	location string // where to GET it: the CDN for LFS files, else the resolve URL
}

// head asks for a file's metadata without following an absolute redirect
// (the LFS CDN), like huggingface_hub's get_hf_file_metadata.
func (c *client) head(ctx context.Context, repo, commit, file string) (fileMeta, error) {
	u := c.resolveURL(repo, commit, file)
	for hops := 0; ; hops++ {
		resp, err := c.do(ctx, func() (*http.Request, error) { return c.request(ctx, http.MethodHead, u) })
		if err != nil {
			return fileMeta{}, &Error{Repo: repo, File: file, URL: u, Err: err}
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			lu, err := resp.Request.URL.Parse(loc)
			if err != nil {
				return fileMeta{}, &Error{Repo: repo, File: file, URL: u, Err: fmt.Errorf("%w: Location %q", ErrBadResponse, loc)}
			}
			if pu, _ := url.Parse(loc); pu != nil && pu.Host == "" && hops < 5 {
				u = lu.String() // a renamed repository: same host, follow
				continue
			}
			m, err := c.meta(resp, repo, file)
			m.location = lu.String()
			return m, err
		}
		if resp.StatusCode != http.StatusOK {
			return fileMeta{}, c.statusError(resp, repo, file)
		}
		m, err := c.meta(resp, repo, file)
		m.location = u
		return m, err
	}
}

func (c *client) meta(resp *http.Response, repo, file string) (fileMeta, error) {
	h := resp.Header
	m := fileMeta{commit: h.Get(headerRepoCommit), size: -1}
	m.etag = h.Get(headerLinkedETag)
	if m.etag == "" {
		m.etag = h.Get("ETag")
	}
	m.etag = strings.Trim(strings.TrimPrefix(m.etag, "W/"), `"`)
	if !safeBlob.MatchString(m.etag) {
		return m, &Error{Repo: repo, File: file, URL: resp.Request.URL.Redacted(), Status: resp.StatusCode,
			Err: fmt.Errorf("%w: no usable ETag (got %q), so the file cannot be verified or cached", ErrBadResponse, m.etag)}
	}
	size := h.Get(headerLinkedSize)
	if size == "" {
		size = h.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
		m.size = n
	}
	return m, nil
}

// isNetErr reports an error worth retrying a body read for.
func isNetErr(err error) bool {
	var we writeError
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrChecksum) && !errors.As(err, &we)
}
