package safetensors

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// PlanShards splits specs, taken in name order, into consecutive shards whose
// data is at most maxBytes each (headers not counted, as Hugging Face's
// max_shard_size does not count them). A tensor larger than maxBytes gets a
// shard of its own. maxBytes <= 0 means one shard. No specs, no shards.
func PlanShards(specs []TensorSpec, maxBytes int64) [][]TensorSpec {
	sorted := slices.Clone(specs)
	slices.SortFunc(sorted, func(a, b TensorSpec) int { return strings.Compare(a.Name, b.Name) })
	var shards [][]TensorSpec
	var cur []TensorSpec
	var curBytes int64
	for _, s := range sorted {
		_, n, ok := byteSize(s.Shape, s.DType.Size())
		if !ok {
			n = 0 // Create rejects such a spec with a precise error
		}
		if len(cur) > 0 && maxBytes > 0 && (curBytes > maxBytes-n) {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, s)
		curBytes += n
	}
	if len(cur) > 0 {
		shards = append(shards, cur)
	}
	return shards
}

// ShardName returns the Hugging Face name of shard i of n, counting from 1
// as the name does: ShardName(1, 3) is "model-00001-of-00003.safetensors".
// A checkpoint of one shard is not sharded, so ShardName(1, 1) is
// "model.safetensors" (SingleFileName).
func ShardName(i, n int) string {
	if n == 1 && i == 1 {
		return SingleFileName
	}
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n)
}

// WriteIndex writes model.safetensors.index.json atomically:
// {"metadata": {"total_size": N}, "weight_map": {tensor: shard}} with sorted
// keys and two-space indentation, as transformers writes it.
func WriteIndex(path string, totalSize int64, weightMap map[string]string) error {
	for name, shard := range weightMap {
		if !plainFileName(shard) {
			return &FormatError{File: path, Tensor: name, Offset: noOffset,
				Msg: fmt.Sprintf("shard %q is not a plain file name", shard), Err: ErrBadSpec}
		}
	}
	type metadata struct {
		TotalSize int64 `json:"total_size"`
	}
	index := struct {
		Metadata  metadata          `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{metadata{totalSize}, weightMap}
	if index.WeightMap == nil {
		index.WeightMap = map[string]string{}
	}
	b, err := json.MarshalIndent(index, "", "  ") // map keys come out sorted
	if err != nil {
		return fmt.Errorf("safetensors: index %s: %w", path, err)
	}
	b = append(b, '\n')
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}

// plainFileName reports whether a shard name from an index is a file beside
// the index: the index is untrusted, so no separators, no "." or "..".
func plainFileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}
