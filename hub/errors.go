package hub

import (
	"fmt"
	"strings"

	"github.com/quantpack/quantpack/internal/fault"
)

// Sentinels, one per thing a user can act on. Compare with errors.Is.
var (
	// ErrRepoNotFound: the Hub knows no such repository, or it is private and
	// the request had no token that may read it.
	ErrRepoNotFound = fault.New(fault.Invalid, "hub: repository not found")
	// ErrRevisionNotFound: the repository has no such branch, tag or commit.
	ErrRevisionNotFound = fault.New(fault.Invalid, "hub: revision not found")
	// ErrEntryNotFound: a file the repository listed could not be fetched.
	ErrEntryNotFound = fault.New(fault.Invalid, "hub: file not found in the repository")
	// ErrUnauthorized: HTTP 401, no token or a token the Hub rejects.
	ErrUnauthorized = fault.New(fault.Other, "hub: authentication required (401)")
	// ErrForbidden: HTTP 403, the token may not read this repository (gated
	// repositories need their terms accepted on the model page first).
	ErrForbidden = fault.New(fault.Other, "hub: access denied (403)")
	// ErrRateLimited: HTTP 429 on every retry.
	ErrRateLimited = fault.New(fault.Other, "hub: rate limited (429)")
	// ErrServer: HTTP 5xx or a network failure on every retry.
	ErrServer = fault.New(fault.Other, "hub: server or network failure")
	// ErrIncomplete: the connection kept failing mid-file; the partial blob
	// stays in the cache and the next run resumes it.
	ErrIncomplete = fault.New(fault.Other, "hub: download incomplete")
	// ErrChecksum: the bytes received do not hash to the file's ETag, or are
	// longer than announced. The blob is deleted and never linked.
	ErrChecksum = fault.New(fault.Invalid, "hub: checksum mismatch")
	// ErrBadResponse: the Hub answered something quantpack cannot trust (no
	// ETag, malformed JSON, a file name that escapes the snapshot).
	ErrBadResponse = fault.New(fault.Invalid, "hub: malformed response")
	// ErrOffline: offline mode and the cache lacks what is needed.
	ErrOffline = fault.New(fault.Other, "hub: offline and not in the cache")
	// ErrEndpoint: HF_ENDPOINT is not an http:// or https:// URL.
	ErrEndpoint = fault.New(fault.Usage, "hub: HF_ENDPOINT must be an http:// or https:// URL")
	// ErrPickleOnly: the repository has only pickled weights
	// (pytorch_model.bin and the like), which quantpack never loads.
	ErrPickleOnly = fault.New(fault.Unsupported, "hub: only pickled weights, no safetensors")
	// ErrNoWeights: the repository has no weights quantpack can read.
	ErrNoWeights = fault.New(fault.Unsupported, "hub: no model.safetensors or model.safetensors.index.json")
)

// Error is a failure with its place: the repository, the file (empty for the
// revision lookup), the URL and HTTP status when there was a response.
type Error struct {
	Repo   string
	File   string
	URL    string
	Status int
	Hint   string // what to do about it
	Err    error  // a sentinel above, possibly wrapped
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Repo)
	if e.File != "" {
		b.WriteString(": " + e.File)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d from %s)", e.Status, e.URL)
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }
