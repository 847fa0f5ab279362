package hub

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
)

// The files quantpack reads from a repository; nothing else is downloaded.
const (
	FileConfig       = "config.json"
	FilePreprocessor = "preprocessor_config.json"
	FileCard         = "README.md"
	FileWeights      = "model.safetensors"
	FileIndex        = "model.safetensors.index.json"
)

// optionalFiles are fetched when the repository has them; their absence is
// remembered in .no_exist like huggingface_hub does.
var optionalFiles = []string{FilePreprocessor, FileCard}

// maxIndexBytes caps model.safetensors.index.json: a weight map of a
// 100k-tensor model is a few MB.
const maxIndexBytes = 64 << 20

// pickleFile reports a weights file quantpack never loads (pickles can run
// code) or cannot read (TensorFlow, Flax).
func pickleFile(name string) bool {
	if strings.Contains(name, "/") {
		return false
	}
	for _, s := range []string{".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".msgpack", ".bin.index.json"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// chooseWeights picks the weights entry point among a repository's files:
// the shard index when there is one, else model.safetensors.
func chooseWeights(repo string, files map[string]bool) (string, error) {
	switch {
	case files[FileIndex]:
		return FileIndex, nil
	case files[FileWeights]:
		return FileWeights, nil
	}
	var pickles, all []string
	for f := range files {
		all = append(all, f)
		if pickleFile(f) {
			pickles = append(pickles, f)
		}
	}
	sort.Strings(pickles)
	sort.Strings(all)
	if len(pickles) > 0 {
		return "", &Error{Repo: repo, Err: ErrPickleOnly, Hint: fmt.Sprintf(
			"it has %s; quantpack never loads pickles (they can run code): save it with transformers' "+
				"save_pretrained(..., safe_serialization=True), or name a revision that has safetensors "+
				"(the Hub's conversion bot opens them as refs/pr/N)", strings.Join(first(pickles, 4), ", "))}
	}
	return "", &Error{Repo: repo, Err: ErrNoWeights, Hint: "it has: " + strings.Join(first(all, 12), ", ")}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

// safeRepoPath reports whether name is a clean relative path that stays
// inside the snapshot: no absolute path, no "..", no backslash, no dot
// files, no empty segment.
func safeRepoPath(name string) bool {
	if name == "" || len(name) > 1024 || strings.ContainsAny(name, "\\\x00") || path.Clean(name) != name || path.IsAbs(name) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}

// indexShards reads a model.safetensors.index.json and returns the shard
// files its weight_map names, sorted and unique. Every name must be a safe
// path; the caller checks that the repository has it.
func indexShards(repo, p string) ([]string, error) {
	b, err := readSmall(p, maxIndexBytes)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, &Error{Repo: repo, File: FileIndex, Err: fmt.Errorf("%w: %v", ErrBadResponse, err)}
	}
	set := map[string]bool{}
	for _, f := range idx.WeightMap {
		if !safeRepoPath(f) || !strings.HasSuffix(f, ".safetensors") {
			return nil, &Error{Repo: repo, File: FileIndex, Err: fmt.Errorf("%w: shard name %q", ErrBadResponse, f)}
		}
		set[f] = true
	}
	if len(set) == 0 {
		return nil, &Error{Repo: repo, File: FileIndex, Err: fmt.Errorf("%w: empty weight_map", ErrBadResponse)}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// cacheState is what a snapshot holds of the files quantpack needs.
type cacheState struct {
	present         []string // files in the snapshot, sorted
	missing         []string // needed and neither present nor known absent
	missingOptional []string // optional, neither present nor known absent
}

// inspect looks at a cached snapshot without touching the network. It fails
// only when the cache proves the repository unusable (only pickles).
func (c *repoCache) inspect(repo, commit string) (cacheState, error) {
	var st cacheState
	add := func(f string, optional bool) {
		switch {
		case c.has(commit, f):
			st.present = append(st.present, f)
		case c.absent(commit, f):
		case optional:
			st.missingOptional = append(st.missingOptional, f)
		default:
			st.missing = append(st.missing, f)
		}
	}
	add(FileConfig, false)
	for _, f := range optionalFiles {
		add(f, true)
	}
	switch {
	case c.has(commit, FileIndex):
		st.present = append(st.present, FileIndex)
		shards, err := indexShards(repo, c.pointer(commit, FileIndex))
		if err != nil {
			return st, err
		}
		for _, s := range shards {
			add(s, false)
		}
	case c.has(commit, FileWeights):
		st.present = append(st.present, FileWeights)
	case c.absent(commit, FileIndex) && c.absent(commit, FileWeights):
		// transformers records both as absent when it falls back to a
		// pickle: the repository has no safetensors at this commit.
		files := map[string]bool{}
		ents, _ := os.ReadDir(c.snapshot(commit))
		for _, e := range ents {
			files[e.Name()] = true
		}
		_, err := chooseWeights(repo, files)
		return st, err
	default:
		st.missing = append(st.missing, FileWeights+" (or "+FileIndex+")")
	}
	sort.Strings(st.present)
	return st, nil
}
