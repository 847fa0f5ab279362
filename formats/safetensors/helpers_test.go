package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
)

// fixtureDir returns ../shared/fixtures/safetensors/<sub>, skipping (failing in CI) when absent.
func fixtureDir(t testing.TB, sub string) string {
	return testenv.Fixtures(t, filepath.Join("safetensors", sub))
}

// fixtureFiles lists every *.safetensors under the fixture folders, except
// the one that is malformed on purpose.
func fixtureFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"hf-samples", "burn", "misc"} {
		m, err := filepath.Glob(filepath.Join(fixtureDir(t, sub), "*.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			if filepath.Base(p) != "syoyo-abuse-attempt-1.safetensors" {
				out = append(out, p)
			}
		}
	}
	if len(out) < 30 {
		t.Fatalf("found only %d fixtures; the set has 34", len(out))
	}
	return out
}

// raw builds a file: the u64 length n (usually len(header)), header, data.
func raw(n uint64, header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, n)
	b = append(b, header...)
	return append(b, data...)
}

// file builds a well-formed length prefix for header.
func file(header string, data []byte) []byte { return raw(uint64(len(header)), header, data) }

// memSink collects writer output in memory.
type memSink struct {
	mu        sync.Mutex
	buf       []byte
	committed bool
	aborted   bool
}

func (m *memSink) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.buf) {
		m.buf = append(m.buf, make([]byte, end-len(m.buf))...)
	}
	copy(m.buf[off:], p)
	return len(p), nil
}
func (m *memSink) Commit() error { m.committed = true; return nil }
func (m *memSink) Abort()        { m.aborted = true }

// writeMem writes a file in memory through the real layout and writer code.
func writeMem(t testing.TB, meta map[string]string, specs []TensorSpec, data map[string][]byte) []byte {
	t.Helper()
	mem := &memSink{}
	w, err := create("mem.safetensors", meta, specs, func(string) (sink, error) { return mem, nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Specs() {
		if err := w.WriteTensor(s.Name, data[s.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if int64(len(mem.buf)) != w.Size() {
		t.Fatalf("wrote %d bytes, Size() says %d", len(mem.buf), w.Size())
	}
	return mem.buf
}

// specsOf returns the specs and data of every tensor of f.
func specsOf(t testing.TB, f *File) ([]TensorSpec, map[string][]byte) {
	t.Helper()
	var specs []TensorSpec
	data := map[string][]byte{}
	for _, ti := range f.Tensors() {
		specs = append(specs, TensorSpec{Name: ti.Name, DType: ti.DType, Shape: ti.Shape})
		b, err := f.Bytes(ti)
		if err != nil {
			t.Fatal(err)
		}
		data[ti.Name] = bytes.Clone(b)
	}
	return specs, data
}

// sameContent fails unless a and b hold the same tensors, bytes and metadata.
func sameContent(t testing.TB, a, b *File) {
	t.Helper()
	if len(a.Tensors()) != len(b.Tensors()) {
		t.Fatalf("%d tensors vs %d", len(a.Tensors()), len(b.Tensors()))
	}
	for _, ta := range a.Tensors() {
		tb, ok := b.Lookup(ta.Name)
		if !ok {
			t.Fatalf("tensor %q lost", ta.Name)
		}
		if ta.DType != tb.DType || shapeString(ta.Shape) != shapeString(tb.Shape) || ta.Size != tb.Size {
			t.Fatalf("tensor %q: %s %v %d vs %s %v %d", ta.Name, ta.DType, ta.Shape, ta.Size, tb.DType, tb.Shape, tb.Size)
		}
		da, err := a.Bytes(ta)
		if err != nil {
			t.Fatal(err)
		}
		db, err := b.Bytes(tb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Fatalf("tensor %q: bytes differ", ta.Name)
		}
	}
	ma, mb := a.Metadata(), b.Metadata()
	if len(ma) != len(mb) {
		t.Fatalf("metadata %v vs %v", ma, mb)
	}
	for k, v := range ma {
		if mb[k] != v {
			t.Fatalf("metadata %v vs %v", ma, mb)
		}
	}
}

// dirEntries lists dir's names (to check nothing was left behind).
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
