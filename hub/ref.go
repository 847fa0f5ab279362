package hub

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultEndpoint is the public Hub, used when $HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch a bare id means, as in huggingface_hub.
const DefaultRevision = "main"

// Ref is a parsed model id: Repo is "org/name", Revision a branch, tag or
// commit hash.
type Ref struct {
	Repo     string
	Revision string
}

// String is the id as a user writes it.
func (r Ref) String() string {
	if r.Revision == DefaultRevision {
		return r.Repo
	}
	return r.Repo + "@" + r.Revision
}

// The Hub's own rules for a namespace or name: letters, digits, '-', '_'
// and '.', at most 96 characters, no "--" or ".." (which would make the cache
// folder name ambiguous or escape it), not starting or ending with '-' or '.'.
var namePart = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$`)

// commitHash is a full git commit id; huggingface_hub's REGEX_COMMIT_HASH.
var commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ParseRef reads "org/name" or "org/name@revision". It reports false for
// anything else, so that a mistyped local path is reported as such rather
// than looked up on the Hub.
func ParseRef(s string) (Ref, bool) {
	repo, rev, hasRev := strings.Cut(s, "@")
	if hasRev && !validRevision(rev) {
		return Ref{}, false
	}
	if !hasRev {
		rev = DefaultRevision
	}
	org, name, ok := strings.Cut(repo, "/")
	if !ok || !namePart.MatchString(org) || !namePart.MatchString(name) ||
		strings.Contains(repo, "--") || strings.Contains(repo, "..") {
		return Ref{}, false
	}
	return Ref{Repo: repo, Revision: rev}, true
}

// validRevision accepts git ref names that are safe as a path under refs/:
// "main", "v1.0", "refs/pr/1"; no "..", no empty segment, no leading '/'.
func validRevision(rev string) bool {
	if rev == "" || len(rev) > 256 || strings.Contains(rev, "@{") || strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") {
		return false
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return false
		}
		for _, r := range seg {
			if r <= ' ' || r == 0x7f || strings.ContainsRune(`\~^:?*[`, r) {
				return false
			}
		}
	}
	return true
}

// FolderName is the repository's folder in the cache: "models--org--name"
// (huggingface_hub's repo_folder_name with repo_type "model").
func FolderName(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}

// CacheDir is the Hugging Face hub cache as huggingface_hub's constants.py
// decides it: $HF_HUB_CACHE, else the legacy $HUGGINGFACE_HUB_CACHE, else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. A leading "~" is expanded as Python's expanduser
// does.
func CacheDir() string {
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := os.Getenv(k); v != "" {
			return expandUser(v)
		}
	}
	return filepath.Join(homeDir(), "hub")
}

// homeDir is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface. The token file lives there too.
func homeDir() string {
	if v := os.Getenv("HF_HOME"); v != "" {
		return expandUser(v)
	}
	if v := os.Getenv("XDG_CACHE_HOME"); v != "" {
		return filepath.Join(expandUser(v), "huggingface")
	}
	return filepath.Join(expandUser("~/.cache"), "huggingface")
}

func expandUser(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// envTrue reads a boolean environment variable the way huggingface_hub does
// (1, ON, YES, TRUE in any case).
func envTrue(k string) bool {
	switch strings.ToUpper(strings.TrimSpace(os.Getenv(k))) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// tokenFromEnv is $HF_TOKEN, else the legacy $HUGGING_FACE_HUB_TOKEN, else
// the file `hf auth login` writes ($HF_TOKEN_PATH, else $HF_HOME/token).
func tokenFromEnv() string {
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	p := os.Getenv("HF_TOKEN_PATH")
	if p == "" {
		p = filepath.Join(homeDir(), "token")
	}
	// The token file is a few dozen bytes; cap what we read from it.
	f, err := os.Open(expandUser(p))
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.Read(buf)
	return strings.TrimSpace(string(buf[:n]))
}

// parseEndpoint checks that the endpoint is an absolute http(s) URL and
// returns it without a trailing slash.
func parseEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: got %q (unset it for %s)", ErrEndpoint, s, DefaultEndpoint)
	}
	return strings.TrimRight(s, "/"), nil
}
