package study

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard selects a deterministic slice of a study's cells: Index of Total,
// 1-based. The zero Shard is the whole study.
type Shard struct {
	Index int `json:"index"`
	Total int `json:"total"`
}

// Whole reports whether s is the whole study.
func (s Shard) Whole() bool { return s.Total <= 1 }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Total) }

// maxShards bounds --shard's total (a CI matrix is at most a few hundred).
const maxShards = 10000

// Environment variables --shard auto reads, in this order.
const (
	// EnvGitLabIndex and EnvGitLabTotal are GitLab CI's `parallel: N`
	// (1-based index).
	EnvGitLabIndex = "CI_NODE_INDEX"
	EnvGitLabTotal = "CI_NODE_TOTAL"
	// EnvK8sIndex is a Kubernetes Indexed Job's completion index (0-based);
	// the total comes from EnvShardTotal (set it to the Job's completions).
	EnvK8sIndex   = "JOB_COMPLETION_INDEX"
	EnvShardTotal = "QUANTPACK_SHARD_TOTAL"
)

// ParseShard reads --shard: "I/N" (1 ≤ I ≤ N) or "auto", which takes the
// index and total from the CI's environment (getenv): GitLab's
// CI_NODE_INDEX/CI_NODE_TOTAL, or a Kubernetes Indexed Job's
// JOB_COMPLETION_INDEX (0-based) with QUANTPACK_SHARD_TOTAL. On GitHub
// Actions pass the matrix value: --shard ${{ matrix.shard }}/N. "" is the
// whole study.
func ParseShard(s string, getenv func(string) string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	if s == "auto" {
		switch {
		case getenv(EnvGitLabIndex) != "" || getenv(EnvGitLabTotal) != "":
			return parseIndexTotal(getenv(EnvGitLabIndex), getenv(EnvGitLabTotal), 0,
				fmt.Sprintf("--shard auto: %s=%q %s=%q", EnvGitLabIndex, getenv(EnvGitLabIndex), EnvGitLabTotal, getenv(EnvGitLabTotal)))
		case getenv(EnvK8sIndex) != "":
			return parseIndexTotal(getenv(EnvK8sIndex), getenv(EnvShardTotal), 1,
				fmt.Sprintf("--shard auto: %s=%q %s=%q", EnvK8sIndex, getenv(EnvK8sIndex), EnvShardTotal, getenv(EnvShardTotal)))
		}
		return Shard{}, fmt.Errorf("%w: --shard auto: none of %s/%s or %s (+%s) is set; pass --shard I/N",
			ErrOption, EnvGitLabIndex, EnvGitLabTotal, EnvK8sIndex, EnvShardTotal)
	}
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%w: --shard %q: want I/N (e.g. 2/3) or auto", ErrOption, s)
	}
	return parseIndexTotal(i, n, 0, fmt.Sprintf("--shard %q", s))
}

// parseIndexTotal parses an index (plus add, for 0-based indexes) and a total.
func parseIndexTotal(index, total string, add int, what string) (Shard, error) {
	i, err1 := strconv.Atoi(strings.TrimSpace(index))
	n, err2 := strconv.Atoi(strings.TrimSpace(total))
	i += add
	if err1 != nil || err2 != nil || n < 1 || n > maxShards || i < 1 || i > n {
		return Shard{}, fmt.Errorf("%w: %s: want an index from 1 to a total of at most %d", ErrOption, what, maxShards)
	}
	return Shard{Index: i, Total: n}, nil
}

// cellRef names one cell of the plan.
type cellRef struct {
	model     int // index into the study's models
	precision string
}

// assign deals the study's cells to total shards: in plan order (models as
// given, precisions as given), each cell goes to the shard with the least
// work so far, ties to the lowest index. A cell's work is its model's
// checkpoint size (conversion, export and inference all scale with it).
// The greedy pass is deterministic, keeps the shards within one cell's work
// of each other, and never moves an earlier cell: adding models at the end
// of the list adds cells without reshuffling the shards' existing ones, so
// their caches stay valid.
func assign(models []ModelInfo, precs []string, total int) [][]cellRef {
	shards := make([][]cellRef, max(total, 1))
	load := make([]int64, len(shards))
	for m, mi := range models {
		w := max(mi.bytes(), 1)
		for _, p := range precs {
			best := 0
			for s := range load {
				if load[s] < load[best] {
					best = s
				}
			}
			shards[best] = append(shards[best], cellRef{m, p})
			load[best] += w
		}
	}
	return shards
}

// names lists cells as "model/precision".
func cellNames(models []ModelInfo, cells []cellRef) []string {
	out := make([]string, 0, len(cells))
	for _, c := range cells {
		out = append(out, models[c.model].Name+"/"+c.precision)
	}
	return out
}
