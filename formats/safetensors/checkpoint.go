package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/quantpack/quantpack/internal/safeio"
)

// Names of the Hugging Face single-file and sharded layouts.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// MaxIndexSize caps model.safetensors.index.json. An index costs about 80
// bytes per tensor, so 100 MB (the header limit, for the same reason) is
// over a million tensors.
const MaxIndexSize = MaxHeaderSize

// Entry is a tensor of a checkpoint and the file that holds it.
type Entry struct {
	TensorInfo
	File *File
}

// Checkpoint is a set of safetensors files read as one: a single file, a
// directory with model.safetensors, or a sharded checkpoint described by
// model.safetensors.index.json.
type Checkpoint struct {
	files   []*File // sorted by path
	entries []Entry // sorted by name
	index   map[string]int
	meta    map[string]string
}

// OpenCheckpoint opens path, which is a .safetensors file, an index file, or
// a directory holding model.safetensors.index.json (preferred) or
// model.safetensors. For a sharded checkpoint the index is authoritative and
// must agree with the shards exactly: every mapped tensor present in its
// shard, no shard holding a tensor the index does not map to it.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if strings.HasSuffix(path, ".index.json") {
			return openSharded(path)
		}
		return openSingle(path)
	}
	idx := filepath.Join(path, IndexFileName)
	if _, err := os.Stat(idx); err == nil {
		return openSharded(idx)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	single := filepath.Join(path, SingleFileName)
	if _, err := os.Stat(single); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errAt(ErrNoCheckpoint, path, "", noOffset, "neither %s nor %s found", SingleFileName, IndexFileName)
		}
		return nil, err
	}
	return openSingle(single)
}

func openSingle(path string) (*Checkpoint, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{files: []*File{f}, meta: f.Metadata()}
	for _, t := range f.tensors {
		c.entries = append(c.entries, Entry{TensorInfo: t, File: f})
	}
	c.sortEntries()
	return c, nil
}

func openSharded(indexPath string) (*Checkpoint, error) {
	meta, weightMap, err := readIndex(indexPath)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(indexPath)
	byShard := make(map[string][]string) // shard → tensor names
	for name, shard := range weightMap {
		byShard[shard] = append(byShard[shard], name)
	}
	shards := make([]string, 0, len(byShard))
	for s, names := range byShard {
		slices.Sort(names) // errors name the same tensor every run
		shards = append(shards, s)
	}
	slices.Sort(shards)

	c := &Checkpoint{meta: meta}
	if err := c.openShards(indexPath, dir, shards, byShard, weightMap); err != nil {
		c.Close()
		return nil, err
	}
	c.sortEntries()
	return c, nil
}

// openShards opens each shard and checks it against the index.
func (c *Checkpoint) openShards(indexPath, dir string, shards []string, byShard map[string][]string, weightMap map[string]string) error {
	for _, shard := range shards {
		p := filepath.Join(dir, shard)
		f, err := Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return errAt(ErrMissingShard, indexPath, byShard[shard][0], noOffset, "shard %q does not exist", shard)
		}
		if err != nil {
			return err
		}
		c.files = append(c.files, f)
		for _, t := range f.tensors {
			if want, ok := weightMap[t.Name]; !ok {
				return errAt(ErrIndex, p, t.Name, t.Offset, "tensor is not in the index's weight_map")
			} else if want != shard {
				return errAt(ErrDuplicate, p, t.Name, t.Offset, "tensor is mapped to shard %q, not this one", want)
			}
			c.entries = append(c.entries, Entry{TensorInfo: t, File: f})
		}
		for _, name := range byShard[shard] {
			if _, ok := f.index[name]; !ok {
				return errAt(ErrIndex, p, name, noOffset, "tensor mapped to this shard by the index is not in it")
			}
		}
	}
	return nil
}

func (c *Checkpoint) sortEntries() {
	slices.SortFunc(c.entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	c.index = make(map[string]int, len(c.entries))
	for i, e := range c.entries {
		c.index[e.Name] = i
	}
}

// readIndex reads and checks model.safetensors.index.json. Non-string
// metadata values (total_size is a number) are kept as their JSON text.
func readIndex(path string) (map[string]string, map[string]string, error) {
	osf, err := safeio.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer osf.Close()
	raw, err := io.ReadAll(io.LimitReader(osf, MaxIndexSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > MaxIndexSize {
		return nil, nil, errAt(ErrIndex, path, "", noOffset, "index is larger than %d bytes", MaxIndexSize)
	}
	p := &headerParser{file: path}
	p.dec = json.NewDecoder(bytes.NewReader(raw))
	p.dec.UseNumber()
	fail := func(err error) error {
		// The index is not a header: reclassify JSON errors.
		var fe *FormatError
		if errors.As(err, &fe) && fe.Err == ErrHeaderJSON {
			fe.Err = ErrIndex
		}
		return err
	}
	if err := p.delim('{', "", "index is not a JSON object"); err != nil {
		return nil, nil, fail(err)
	}
	var meta, weightMap map[string]string
	seen := map[string]bool{}
	for p.dec.More() {
		key, err := p.key("")
		if err != nil {
			return nil, nil, fail(err)
		}
		if seen[key] {
			return nil, nil, errAt(ErrDuplicate, path, "", p.offset(), "key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "metadata":
			if meta, err = p.indexMetadata(); err != nil {
				return nil, nil, fail(err)
			}
		case "weight_map":
			if weightMap, err = p.weightMap(); err != nil {
				return nil, nil, fail(err)
			}
		default:
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return nil, nil, fail(p.fail("", "%v", err))
			}
		}
	}
	if err := p.delim('}', "", "index object not closed"); err != nil {
		return nil, nil, fail(err)
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, nil, errAt(ErrIndex, path, "", p.offset(), "data after the index's closing brace")
	}
	if weightMap == nil {
		return nil, nil, errAt(ErrIndex, path, "", noOffset, "index has no weight_map")
	}
	return meta, weightMap, nil
}

func (p *headerParser) indexMetadata() (map[string]string, error) {
	tok, err := p.token("")
	if err != nil || tok == nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, p.fail("", "metadata is not an object")
	}
	m := map[string]string{}
	for p.dec.More() {
		k, err := p.key("")
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errAt(ErrDuplicate, p.file, "", p.offset(), "metadata key %q appears twice", k)
		}
		var v json.RawMessage
		if err := p.dec.Decode(&v); err != nil {
			return nil, p.fail("", "%v", err)
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			m[k] = s
		} else {
			m[k] = string(v)
		}
	}
	if err := p.delim('}', "", "metadata not closed"); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		m = nil
	}
	return m, nil
}

func (p *headerParser) weightMap() (map[string]string, error) {
	if err := p.delim('{', "", "weight_map is not an object"); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for p.dec.More() {
		name, err := p.key("")
		if err != nil {
			return nil, err
		}
		if _, dup := m[name]; dup {
			return nil, errAt(ErrDuplicate, p.file, name, p.offset(), "tensor appears twice in weight_map")
		}
		tok, err := p.token(name)
		if err != nil {
			return nil, err
		}
		shard, ok := tok.(string)
		if !ok {
			return nil, p.fail(name, "shard name is not a string")
		}
		if !plainFileName(shard) {
			return nil, errAt(ErrIndex, p.file, name, p.offset(), "shard %q is not a plain file name", shard)
		}
		m[name] = shard
	}
	if err := p.delim('}', "", "weight_map not closed"); err != nil {
		return nil, err
	}
	return m, nil
}

// Tensors returns every tensor sorted by name. The slice is a copy.
func (c *Checkpoint) Tensors() []Entry { return slices.Clone(c.entries) }

// Lookup finds a tensor by name.
func (c *Checkpoint) Lookup(name string) (Entry, bool) {
	i, ok := c.index[name]
	if !ok {
		return Entry{}, false
	}
	return c.entries[i], true
}

// Files returns the paths of the checkpoint's files, sorted.
func (c *Checkpoint) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = f.Name()
	}
	slices.Sort(out)
	return out
}

// Metadata returns the single file's "__metadata__", or for a sharded
// checkpoint the index's "metadata" (numbers such as total_size as their
// JSON text; the shards' own metadata is not merged). Nil if none.
func (c *Checkpoint) Metadata() map[string]string { return c.meta }

// Close closes every file and returns the first error.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.files = nil
	return first
}
