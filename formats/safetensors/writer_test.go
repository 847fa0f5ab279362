package safetensors

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/quantpack/quantpack/internal/atomicfile"
)

// testSpecs covers every dtype, a scalar, a zero-size tensor and names that
// sort differently from their declaration order.
func testSpecs() []TensorSpec {
	return []TensorSpec{
		{"z.weight", F32, []int64{7, 5}},
		{"a.bias", F16, []int64{13}},
		{"m.scalar", I64, nil},
		{"m.empty", F32, []int64{4, 0, 3}},
		{"b.bool", Bool, []int64{3}},
		{"c.u8", U8, []int64{9}},
		{"c.i8", I8, []int64{2, 2}},
		{"d.u16", U16, []int64{3}},
		{"d.i16", I16, []int64{5}},
		{"e.bf16", BF16, []int64{1, 1, 3}},
		{"f.u32", U32, []int64{2}},
		{"f.i32", I32, []int64{3}},
		{"g.f64", F64, []int64{2, 3}},
		{"h.u64", U64, []int64{1}},
		{"h.f8e4m3", F8E4M3, []int64{11}},
		{"h.f8e5m2", F8E5M2, []int64{6}},
		{"é/<&>", U8, []int64{1}},
	}
}

func randomData(specs []TensorSpec, seed uint64) map[string][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := map[string][]byte{}
	for _, s := range specs {
		_, n, _ := byteSize(s.Shape, s.DType.Size())
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		out[s.Name] = b
	}
	return out
}

// writeFile writes specs to path, feeding tensors in the given order; with
// parallel set, each tensor from its own goroutine.
func writeFile(t *testing.T, path string, meta map[string]string, specs []TensorSpec, data map[string][]byte, order []string, parallel bool) {
	t.Helper()
	w, err := Create(path, meta, specs)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var wg sync.WaitGroup
	errs := make([]error, len(order))
	for i, name := range order {
		if parallel {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = w.WriteTensor(name, data[name]) }()
		} else {
			errs[i] = w.WriteTensor(name, data[name])
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != w.Size() {
		t.Fatalf("stat %v, size %d vs Size() %d", err, st.Size(), w.Size())
	}
}

func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestWriterDeterministic: the bytes depend only on the content, not on the
// order of specs, the order of WriteTensor calls or their concurrency.
func TestWriterDeterministic(t *testing.T) {
	dir := t.TempDir()
	specs := testSpecs()
	data := randomData(specs, 42)
	meta := map[string]string{"format": "pt", "quantpack": "test"}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	sorted := slices.Sorted(slices.Values(names))
	reversed := slices.Clone(sorted)
	slices.Reverse(reversed)
	shuffled := slices.Clone(names)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	specsShuffled := slices.Clone(specs)
	slices.Reverse(specsShuffled)

	runs := []struct {
		name     string
		specs    []TensorSpec
		order    []string
		parallel bool
	}{
		{"name order", specs, sorted, false},
		{"reverse order", specs, reversed, false},
		{"shuffled, parallel", specs, shuffled, true},
		{"specs reversed, parallel", specsShuffled, names, true},
	}
	var first [32]byte
	for i, r := range runs {
		p := filepath.Join(dir, strings.ReplaceAll(r.name, " ", "_")+".safetensors")
		writeFile(t, p, meta, r.specs, data, r.order, r.parallel)
		if h := sha(t, p); i == 0 {
			first = h
		} else if h != first {
			t.Errorf("%s: sha256 differs from %s", r.name, runs[0].name)
		}
	}

	// Read back: same content; layout in name order; aligned header.
	f, err := Open(filepath.Join(dir, "name_order.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.HeaderSize()%8 != 0 {
		t.Errorf("header size %d not a multiple of 8", f.HeaderSize())
	}
	got := f.Tensors()
	if !slices.IsSortedFunc(got, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("tensors not laid out in name order")
	}
	for _, s := range specs {
		ti, ok := f.Lookup(s.Name)
		if !ok || ti.DType != s.DType || shapeString(ti.Shape) != shapeString(s.Shape) {
			t.Fatalf("%q: %+v", s.Name, ti)
		}
		b, _ := f.Bytes(ti)
		if !bytes.Equal(b, data[s.Name]) {
			t.Fatalf("%q: bytes differ", s.Name)
		}
	}
	if !maps2Equal(f.Metadata(), meta) {
		t.Errorf("metadata %v", f.Metadata())
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestWriterReadByReference: what the writer produces (F8 aside, which it
// lacks) is read by the independent parser with the same tensors and bytes.
func TestWriterReadByReference(t *testing.T) {
	var specs []TensorSpec
	for _, s := range testSpecs() {
		if s.DType != F8E4M3 && s.DType != F8E5M2 {
			specs = append(specs, s)
		}
	}
	data := randomData(specs, 3)
	out := writeMem(t, map[string]string{"k": "v"}, specs, data)
	ref, err := nlp.Deserialize(out)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Len() != len(specs) {
		t.Fatalf("reference sees %d tensors, want %d", ref.Len(), len(specs))
	}
	for _, s := range specs {
		v, ok := ref.Tensor(s.Name)
		if !ok || v.DType().String() != string(s.DType) || !bytes.Equal(v.Data(), data[s.Name]) || len(v.Shape()) != len(s.Shape) {
			t.Fatalf("%q: reference reads %v %v", s.Name, ok, v.Shape())
		}
		for i, d := range v.Shape() {
			if int64(d) != s.Shape[i] {
				t.Fatalf("%q: shape %v vs %v", s.Name, v.Shape(), s.Shape)
			}
		}
	}
}

// TestWriterHeaderBytes pins the header layout: metadata first with sorted
// keys, tensors by name, no HTML escaping, space padding to 8.
func TestWriterHeaderBytes(t *testing.T) {
	specs := []TensorSpec{{"b<", U8, []int64{2}}, {"a", F32, nil}}
	out := writeMem(t, map[string]string{"z": "1", "y": "&"}, specs, map[string][]byte{"a": {1, 2, 3, 4}, "b<": {5, 6}})
	want := `{"__metadata__":{"y":"&","z":"1"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b<":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`
	for len(want)%8 != 0 {
		want += " "
	}
	if got := string(out[8 : 8+len(want)]); got != want || len(out) != 8+len(want)+6 {
		t.Fatalf("header\n%q\nwant\n%q", got, want)
	}
	if !bytes.Equal(out[len(out)-6:], []byte{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("data %v", out[len(out)-6:])
	}
}

func TestWriterMisuse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.safetensors")
	specs := []TensorSpec{{"a", F32, []int64{2}}, {"b", U8, []int64{3}}}
	w, err := Create(p, nil, specs)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("nope", nil); !errors.Is(err, ErrUnknownTensor) {
		t.Errorf("unknown tensor: %v", err)
	}
	if err := w.WriteTensor("a", make([]byte, 7)); !errors.Is(err, ErrDataLength) {
		t.Errorf("wrong length: %v", err)
	}
	if err := w.WriteTensor("a", make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("a", make([]byte, 8)); !errors.Is(err, ErrWrittenTwice) {
		t.Errorf("written twice: %v", err)
	}
	err = w.Commit()
	var fe *FormatError
	if !errors.Is(err, ErrIncomplete) || !errors.As(err, &fe) || fe.Tensor != "b" {
		t.Errorf("incomplete commit: %v", err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("second commit: %v", err)
	}
	if err := w.WriteTensor("b", make([]byte, 3)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after commit: %v", err)
	}

	w, err = Create(p, nil, specs)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteTensor("a", make([]byte, 8))
	w.Abort()
	w.Abort()
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("left behind after Abort: %v", names)
	}
}

func TestWriterBadSpecs(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]TensorSpec{
		"duplicate name":   {{"a", U8, []int64{1}}, {"a", U8, []int64{2}}},
		"reserved name":    {{"__metadata__", U8, []int64{1}}},
		"unknown dtype":    {{"a", DType("F17"), []int64{1}}},
		"empty dtype":      {{"a", "", []int64{1}}},
		"negative dim":     {{"a", U8, []int64{2, -1}}},
		"too many dims":    {{"a", U8, make([]int64, MaxDims+1)}},
		"size overflow":    {{"a", F64, []int64{1 << 61}}},
		"total overflow":   {{"a", U8, []int64{1 << 62}}, {"b", U8, []int64{1 << 62}}},
		"invalid UTF-8":    {{"a\xff", U8, []int64{1}}},
		"overflow 2 dims":  {{"a", U8, []int64{1 << 32, 1 << 32}}},
		"header too large": {{strings.Repeat("n", MaxHeaderSize+1), U8, []int64{1}}},
	}
	for name, specs := range cases {
		if _, err := Create(filepath.Join(dir, "x.safetensors"), nil, specs); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Create(filepath.Join(dir, "x.safetensors"), map[string]string{"k": "\xff"}, nil); !errors.Is(err, ErrBadSpec) {
		t.Errorf("bad metadata: %v", err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestWriterUnwritableDir(t *testing.T) {
	dir := t.TempDir()
	specs := []TensorSpec{{"a", U8, []int64{1}}}
	if _, err := Create(filepath.Join(dir, "missing", "x.safetensors"), nil, specs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	if _, err := Create(filepath.Join(notDir, "x.safetensors"), nil, specs); err == nil {
		t.Error("parent is a file: no error")
	}

	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o555)
	defer os.Chmod(ro, 0o755)
	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits do not stop writes, read-only directory case not checked")
		return
	}
	if _, err := Create(filepath.Join(ro, "x.safetensors"), nil, specs); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read-only dir: %v", err)
	}
	if names := dirEntries(t, ro); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

// fullDisk wraps a real temporary file and fails with ENOSPC once more than
// room bytes would have been written, as a full disk does.
type fullDisk struct {
	*atomicfile.File
	mu   sync.Mutex
	room int
}

func (d *fullDisk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(p) > d.room {
		n, _ := d.File.WriteAt(p[:d.room], off)
		d.room = 0
		return n, &fs.PathError{Op: "write", Path: d.File.Name(), Err: syscall.ENOSPC}
	}
	d.room -= len(p)
	return d.File.WriteAt(p, off)
}

func TestWriterDiskFull(t *testing.T) {
	specs := []TensorSpec{{"a", F32, []int64{256}}, {"b", F32, []int64{256}}}
	data := randomData(specs, 1)
	pending := atomicfile.Pending()
	for _, room := range []int{0, 10, 300, 1500} {
		dir := t.TempDir()
		open := func(p string) (sink, error) {
			f, err := atomicfile.Create(p)
			if err != nil {
				return nil, err
			}
			return &fullDisk{File: f, room: room}, nil
		}
		w, err := create(filepath.Join(dir, "x.safetensors"), nil, specs, open)
		if err == nil {
			errA := w.WriteTensor("b", data["b"])
			errB := w.WriteTensor("a", data["a"])
			err = w.Commit()
			if !errors.Is(errors.Join(errA, errB), syscall.ENOSPC) {
				t.Errorf("room %d: writes returned %v, %v", room, errA, errB)
			}
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("room %d: got %v, want ENOSPC", room, err)
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Errorf("room %d: left behind %v", room, names)
		}
	}
	if atomicfile.Pending() != pending {
		t.Errorf("temporary files still registered: %d, was %d", atomicfile.Pending(), pending)
	}
}

// TestReleaseKeepsDataReadable: Release only drops pages from the resident
// set; the data reads back identical afterwards (the page cache refills).
func TestReleaseKeepsDataReadable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.safetensors")
	data := make([]byte, 3*pageSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	w, err := Create(p, nil, []TensorSpec{{Name: "a", DType: U8, Shape: []int64{int64(len(data))}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("a", data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, _ := f.Lookup("a")
	f.Release(ti)
	got := make([]byte, len(data))
	if err := f.ReadTensor(ti, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Fatal("data changed after Release")
	}
}
