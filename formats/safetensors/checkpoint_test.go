package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeSharded writes specs as a sharded checkpoint in dir with shards of at
// most maxBytes, the way convert does, and returns the weight map.
func writeSharded(t *testing.T, dir string, specs []TensorSpec, data map[string][]byte, maxBytes int64) map[string]string {
	t.Helper()
	shards := PlanShards(specs, maxBytes)
	weightMap := map[string]string{}
	var total int64
	for i, shard := range shards {
		name := ShardName(i+1, len(shards))
		var order []string
		for _, s := range shard {
			order = append(order, s.Name)
			weightMap[s.Name] = name
			total += int64(len(data[s.Name]))
		}
		writeFile(t, filepath.Join(dir, name), map[string]string{"format": "pt"}, shard, data, order, false)
	}
	if err := WriteIndex(filepath.Join(dir, IndexFileName), total, weightMap); err != nil {
		t.Fatal(err)
	}
	return weightMap
}

func checkCheckpoint(t *testing.T, c *Checkpoint, specs []TensorSpec, data map[string][]byte) {
	t.Helper()
	entries := c.Tensors()
	if len(entries) != len(specs) {
		t.Fatalf("%d tensors, want %d", len(entries), len(specs))
	}
	if !slices.IsSortedFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Tensors() not sorted by name")
	}
	for _, s := range specs {
		e, ok := c.Lookup(s.Name)
		if !ok || e.DType != s.DType || shapeString(e.Shape) != shapeString(s.Shape) {
			t.Fatalf("%q: %+v", s.Name, e)
		}
		b, err := e.File.Bytes(e.TensorInfo)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data[s.Name]) {
			t.Fatalf("%q: bytes differ", s.Name)
		}
	}
	if _, ok := c.Lookup("absent"); ok {
		t.Error("Lookup found an absent tensor")
	}
	if !slices.IsSorted(c.Files()) {
		t.Errorf("Files() not sorted: %v", c.Files())
	}
}

func TestCheckpointSingle(t *testing.T) {
	dir := t.TempDir()
	specs := testSpecs()
	data := randomData(specs, 5)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	p := filepath.Join(dir, SingleFileName)
	writeFile(t, p, map[string]string{"format": "pt"}, specs, data, names, false)
	for _, open := range []string{dir, p} {
		c, err := OpenCheckpoint(open)
		if err != nil {
			t.Fatal(err)
		}
		checkCheckpoint(t, c, specs, data)
		if !slices.Equal(c.Files(), []string{p}) || c.Metadata()["format"] != "pt" {
			t.Errorf("files %v metadata %v", c.Files(), c.Metadata())
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestCheckpointSharded(t *testing.T) {
	dir := t.TempDir()
	specs := testSpecs()
	data := randomData(specs, 6)
	weightMap := writeSharded(t, dir, specs, data, 64)
	shards := map[string]bool{}
	for _, s := range weightMap {
		shards[s] = true
	}
	if len(shards) < 3 {
		t.Fatalf("only %d shards; the test wants several", len(shards))
	}
	for _, open := range []string{dir, filepath.Join(dir, IndexFileName)} {
		c, err := OpenCheckpoint(open)
		if err != nil {
			t.Fatal(err)
		}
		checkCheckpoint(t, c, specs, data)
		if len(c.Files()) != len(shards) {
			t.Errorf("files %v", c.Files())
		}
		var total int64
		for _, b := range data {
			total += int64(len(b))
		}
		if c.Metadata()["total_size"] != strconv.FormatInt(total, 10) {
			t.Errorf("metadata %v, want total_size %d", c.Metadata(), total)
		}
		c.Close()
	}
}

// TestWriteIndex reads the index back with encoding/json (independent of
// the package's token walk) and checks it is deterministic.
func TestWriteIndex(t *testing.T) {
	dir := t.TempDir()
	wm := map[string]string{"b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors"}
	p := filepath.Join(dir, IndexFileName)
	if err := WriteIndex(p, 1234, wm); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(p)
	var got struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(first, &got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata["total_size"] != 1234 || len(got.WeightMap) != 2 || got.WeightMap["a"] != wm["a"] || got.WeightMap["b"] != wm["b"] {
		t.Errorf("index read back as %+v", got)
	}
	if i, j := bytes.Index(first, []byte(`"a"`)), bytes.Index(first, []byte(`"b"`)); i < 0 || j < i {
		t.Error("weight_map keys not sorted")
	}
	WriteIndex(p, 1234, wm)
	if again, _ := os.ReadFile(p); !bytes.Equal(again, first) {
		t.Error("second write differs")
	}
	if err := WriteIndex(p, 1, map[string]string{"a": "../evil.safetensors"}); !errors.Is(err, ErrBadSpec) {
		t.Errorf("path in shard name: %v", err)
	}
}

// TestCheckpointMalformed damages a good sharded checkpoint one way at a time.
func TestCheckpointMalformed(t *testing.T) {
	specs := []TensorSpec{{"a", U8, []int64{4}}, {"b", U8, []int64{4}}, {"c", U8, []int64{4}}}
	data := randomData(specs, 8)
	s1, s2 := ShardName(1, 2), ShardName(2, 2)
	index := func(body string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, IndexFileName), []byte(body), 0o644)
		}
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   error
	}{
		{"missing shard", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, s2)) }, ErrMissingShard},
		{"corrupt shard", func(t *testing.T, dir string) { os.Truncate(filepath.Join(dir, s1), 20) }, ErrTruncated},
		{"mapped tensor absent", index(`{"weight_map":{"a":"` + s1 + `","b":"` + s1 + `","c":"` + s2 + `","d":"` + s2 + `"}}`), ErrIndex},
		{"unmapped tensor present", index(`{"weight_map":{"a":"` + s1 + `","c":"` + s2 + `"}}`), ErrIndex},
		{"tensor mapped to another shard", index(`{"weight_map":{"a":"` + s1 + `","b":"` + s2 + `","c":"` + s2 + `"}}`), ErrDuplicate},
		{"duplicate in weight_map", index(`{"weight_map":{"a":"` + s1 + `","a":"` + s1 + `"}}`), ErrDuplicate},
		{"path traversal", index(`{"weight_map":{"a":"../` + s1 + `"}}`), ErrIndex},
		{"absolute path", index(`{"weight_map":{"a":"/etc/passwd"}}`), ErrIndex},
		{"no weight_map", index(`{"metadata":{}}`), ErrIndex},
		{"invalid JSON", index(`{"weight_map":{"a":`), ErrIndex},
		{"not an object", index(`[]`), ErrIndex},
		{"shard not a string", index(`{"weight_map":{"a":1}}`), ErrIndex},
		{"trailing data", index(`{"weight_map":{}} {}`), ErrIndex},
		{"no checkpoint", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, IndexFileName))
		}, ErrNoCheckpoint},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSharded(t, dir, specs, data, 8)
			c.damage(t, dir)
			ck, err := OpenCheckpoint(dir)
			if !errors.Is(err, c.want) || ck != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *FormatError", err)
			}
		})
	}
	if _, err := OpenCheckpoint(filepath.Join(t.TempDir(), "nothing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
}

func TestPlanShards(t *testing.T) {
	specs := testSpecs()
	size := func(s TensorSpec) int64 { _, n, _ := byteSize(s.Shape, s.DType.Size()); return n }
	sorted := slices.Clone(specs)
	slices.SortFunc(sorted, func(a, b TensorSpec) int { return strings.Compare(a.Name, b.Name) })
	for _, max := range []int64{0, 1, 8, 30, 64, 100, 1 << 20} {
		shards := PlanShards(specs, max)
		var flat []TensorSpec
		for i, sh := range shards {
			if len(sh) == 0 {
				t.Fatalf("max %d: empty shard %d", max, i)
			}
			var total int64
			for _, s := range sh {
				total += size(s)
			}
			if max > 0 && total > max && len(sh) != 1 {
				t.Errorf("max %d: shard %d holds %d bytes in %d tensors", max, i, total, len(sh))
			}
			// Greedy: the next shard's first tensor would not have fit.
			if i+1 < len(shards) && max > 0 && total+size(shards[i+1][0]) <= max {
				t.Errorf("max %d: shard %d closed early", max, i)
			}
			flat = append(flat, sh...)
		}
		if !slices.EqualFunc(flat, sorted, func(a, b TensorSpec) bool { return a.Name == b.Name }) {
			t.Errorf("max %d: shards do not concatenate to the specs in name order", max)
		}
		if max <= 0 && len(shards) != 1 {
			t.Errorf("max %d: %d shards", max, len(shards))
		}
	}
	if PlanShards(nil, 10) != nil {
		t.Error("no specs should give no shards")
	}
}

func TestShardName(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want string
	}{
		{1, 3, "model-00001-of-00003.safetensors"},
		{3, 3, "model-00003-of-00003.safetensors"},
		{12, 120, "model-00012-of-00120.safetensors"},
		{1, 1, "model.safetensors"},
	} {
		if got := ShardName(c.i, c.n); got != c.want {
			t.Errorf("ShardName(%d, %d) = %q, want %q", c.i, c.n, got, c.want)
		}
	}
}
