// Package hubtest is an in-process fake of the Hugging Face Hub for tests:
// it speaks the endpoints huggingface_hub and package hub use
// (/api/models/{repo}/revision/{rev}; HEAD and GET /{repo}/resolve/{rev}/{file}
// with X-Repo-Commit, ETag, X-Linked-Etag and X-Linked-Size; LFS files
// redirected to a separate "CDN" server that honours Range) and can inject
// the failures a real network has.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// LFSThreshold: files at least this large are stored as LFS files, as the
// Hub does for binaries; *.safetensors always are.
const LFSThreshold = 10 << 20

// Repo is one fake repository at one commit.
type Repo struct {
	Commit   string            // 40 hex
	Branches map[string]string // revision → commit ("main" by default)
	Files    map[string][]byte
	Private  bool // needs the Hub's token
	Gated    bool // needs the Hub's token; any other token gets 403
}

// Hub is the fake. Zero-valued fault fields mean a well-behaved Hub.
type Hub struct {
	URL   string // the endpoint (HF_ENDPOINT)
	Token string // the token private and gated repositories accept

	mu    sync.Mutex
	repos map[string]*Repo
	log   []string // "METHOD path Range=..." of every request, Hub and CDN
	auth  []string // Authorization headers seen by the CDN (must stay empty)

	// Faults, by file path in the repository.
	CutAfter map[string]int64 // the CDN closes the connection after N bytes (once per entry)
	Corrupt  map[string]bool  // the bytes served differ from the ETag
	Hold     map[string]int64 // the CDN sends N bytes then waits for Release
	Release  chan struct{}
	// Status makes the next N requests to any endpoint answer with code.
	Status      int
	StatusTimes int
	StatusCode  string // X-Error-Code with Status

	hub, cdn *httptest.Server
}

// New starts a fake Hub and its CDN; Close stops them.
func New() *Hub {
	h := &Hub{repos: map[string]*Repo{}, Token: "hf_testtoken", Release: make(chan struct{}),
		CutAfter: map[string]int64{}, Corrupt: map[string]bool{}, Hold: map[string]int64{}}
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.URL = h.hub.URL
	return h
}

// Close stops the servers.
func (h *Hub) Close() {
	h.hub.CloseClientConnections()
	h.cdn.CloseClientConnections()
	h.hub.Close()
	h.cdn.Close()
}

// Add registers a repository "org/name".
func (h *Hub) Add(repo string, r *Repo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Branches == nil {
		r.Branches = map[string]string{"main": r.Commit}
	}
	h.repos[repo] = r
}

// Configure runs f with the fake locked, to change faults between requests
// without racing the handlers.
func (h *Hub) Configure(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// Requests returns the requests seen so far.
func (h *Hub) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

// CDNAuth returns the Authorization headers the CDN received.
func (h *Hub) CDNAuth() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.auth...)
}

// IsLFS reports how the fake stores a file.
func IsLFS(name string, data []byte) bool {
	return strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin") || len(data) >= LFSThreshold
}

// GitBlobSHA1 is git's object id of a file: sha1("blob <size>\0" + data).
func GitBlobSHA1(data []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(data))
	s.Write(data)
	return hex.EncodeToString(s.Sum(nil))
}

// SHA256 is the hex sha256 of data (an LFS file's ETag).
func SHA256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func (h *Hub) record(r *http.Request, cdn bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := r.Method + " " + r.URL.EscapedPath()
	if rg := r.Header.Get("Range"); rg != "" {
		line += " Range=" + rg
	}
	h.log = append(h.log, line)
	if cdn && r.Header.Get("Authorization") != "" {
		h.auth = append(h.auth, r.Header.Get("Authorization"))
	}
}

// injected answers with the configured failure status, if one is due.
func (h *Hub) injected(w http.ResponseWriter) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.StatusTimes <= 0 {
		return false
	}
	h.StatusTimes--
	if h.StatusCode != "" {
		w.Header().Set("X-Error-Code", h.StatusCode)
	}
	w.WriteHeader(h.Status)
	return true
}

// access applies the Hub's rules for private and gated repositories.
func (h *Hub) access(w http.ResponseWriter, r *http.Request, repo string) (*Repo, bool) {
	h.mu.Lock()
	rp := h.repos[repo]
	h.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	has := r.Header.Get("Authorization") != ""
	switch {
	case rp == nil || (rp.Private && tok != h.Token):
		// The Hub does not tell a missing repository from a private one.
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Repository not found")
		if has {
			w.WriteHeader(http.StatusNotFound)
		} else {
			w.WriteHeader(http.StatusUnauthorized)
		}
		return nil, false
	case rp.Gated && !has:
		w.Header().Set("X-Error-Code", "GatedRepo")
		w.WriteHeader(http.StatusUnauthorized)
		return nil, false
	case rp.Gated && tok != h.Token:
		w.Header().Set("X-Error-Code", "GatedRepo")
		w.WriteHeader(http.StatusForbidden)
		return nil, false
	}
	return rp, true
}

// revision applies access, then resolves rev (the commit or a branch of
// repo), answering RevisionNotFound when it is neither.
func (h *Hub) revision(w http.ResponseWriter, r *http.Request, repo, rev string) (*Repo, string, bool) {
	rp, ok := h.access(w, r, repo)
	if !ok {
		return nil, "", false
	}
	if rev == rp.Commit {
		return rp, rev, true
	}
	commit, ok := rp.Branches[rev]
	if !ok {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return nil, "", false
	}
	return rp, commit, true
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record(r, false)
	if h.injected(w) {
		return
	}
	p := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok && r.Method == http.MethodGet {
		// {org}/{name}/revision/{rev escaped as one segment}
		parts := strings.SplitN(rest, "/", 4)
		if len(parts) != 4 || parts[2] != "revision" {
			http.NotFound(w, r)
			return
		}
		rev, _ := url.PathUnescape(parts[3])
		h.serveRevision(w, r, parts[0]+"/"+parts[1], rev)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 5)
	if len(parts) == 5 && parts[2] == "resolve" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		rev, _ := url.PathUnescape(parts[3])
		file, _ := url.PathUnescape(parts[4])
		h.serveResolve(w, r, parts[0]+"/"+parts[1], rev, file)
		return
	}
	http.NotFound(w, r)
}

func (h *Hub) serveRevision(w http.ResponseWriter, r *http.Request, repo, rev string) {
	rp, commit, ok := h.revision(w, r, repo, rev)
	if !ok {
		return
	}
	type sib struct {
		RFilename string `json:"rfilename"`
	}
	out := struct {
		ID       string `json:"id"`
		SHA      string `json:"sha"`
		Siblings []sib  `json:"siblings"`
	}{ID: repo, SHA: commit}
	var names []string
	for n := range rp.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Siblings = append(out.Siblings, sib{n})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, repo, rev, file string) {
	rp, commit, ok := h.revision(w, r, repo, rev)
	if !ok {
		return
	}
	data, ok := rp.Files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if IsLFS(file, data) {
		// The Hub answers LFS files with a redirect to its CDN and names
		// the target's sha256 and size in X-Linked-*.
		sum := SHA256(data)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		w.Header().Set("ETag", `"`+GitBlobSHA1([]byte("version https://git-lfs.github.com/spec/v1\noid sha256:"+sum))+`"`)
		w.Header().Set("Location", h.cdn.URL+"/"+repo+"/"+sum+"?file="+url.QueryEscape(file))
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitBlobSHA1(data)+`"`)
	h.serveBytes(w, r, file, data)
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record(r, true)
	if h.injected(w) {
		return
	}
	file := r.URL.Query().Get("file")
	h.mu.Lock()
	var data []byte
	for repo, rp := range h.repos {
		if strings.HasPrefix(r.URL.Path, "/"+repo+"/") {
			data = rp.Files[file]
		}
	}
	h.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	h.serveBytes(w, r, file, data)
}

// serveBytes answers GET and HEAD with Range support and the faults.
func (h *Hub) serveBytes(w http.ResponseWriter, r *http.Request, file string, data []byte) {
	h.mu.Lock()
	corrupt := h.Corrupt[file]
	cut, hasCut := h.CutAfter[file]
	if hasCut {
		delete(h.CutAfter, file)
	}
	hold, hasHold := h.Hold[file]
	h.mu.Unlock()
	if corrupt {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	start := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		s, ok := strings.CutPrefix(rg, "bytes=")
		s, _ = strings.CutSuffix(s, "-")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || n < 0 || n >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
	}
	body := data[start:]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Accept-Ranges", "bytes")
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		return
	}
	switch {
	case hasCut && cut < int64(len(body)):
		w.Write(body[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	case hasHold && hold < int64(len(body)):
		w.Write(body[:hold])
		w.(http.Flusher).Flush()
		select {
		case <-h.Release:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	}
	w.Write(body)
}
