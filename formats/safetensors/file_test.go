package safetensors

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestFileAccess checks every way of reading a tensor, on both paths, against
// the bytes the writer was given.
func TestFileAccess(t *testing.T) {
	dir := t.TempDir()
	specs := testSpecs()
	data := randomData(specs, 9)
	var order []string
	for _, s := range specs {
		order = append(order, s.Name)
	}
	p := filepath.Join(dir, "x.safetensors")
	writeFile(t, p, nil, specs, data, order, false)

	mapped, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	osf, _ := os.Open(p)
	defer osf.Close()
	st, _ := osf.Stat()
	plain, err := NewFile(osf, st.Size(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*File{mapped, plain} {
		for _, ti := range f.Tensors() {
			want := data[ti.Name]
			b, err := f.Bytes(ti)
			if err != nil || !bytes.Equal(b, want) {
				t.Fatalf("%s Bytes(%q): %v", f.Name(), ti.Name, err)
			}
			dst := make([]byte, ti.Size)
			if err := f.ReadTensor(ti, dst); err != nil || !bytes.Equal(dst, want) {
				t.Fatalf("%s ReadTensor(%q): %v", f.Name(), ti.Name, err)
			}
			sec, err := io.ReadAll(f.Section(ti))
			if err != nil || !bytes.Equal(sec, want) {
				t.Fatalf("%s Section(%q): %v", f.Name(), ti.Name, err)
			}
			if err := f.ReadTensor(ti, make([]byte, ti.Size+1)); !errors.Is(err, ErrDataLength) {
				t.Fatalf("wrong-length buffer: %v", err)
			}
		}
		// A TensorInfo that is not this file's must not read anything.
		a, _ := f.Lookup("z.weight")
		forged := a
		forged.Size += 4
		if _, err := f.Bytes(forged); !errors.Is(err, ErrUnknownTensor) {
			t.Errorf("forged size: %v", err)
		}
		forged = a
		forged.Offset = 0
		if err := f.ReadTensor(forged, make([]byte, a.Size)); !errors.Is(err, ErrUnknownTensor) {
			t.Errorf("forged offset: %v", err)
		}
		if _, err := io.ReadAll(f.Section(TensorInfo{Name: "nope", Size: 4})); !errors.Is(err, ErrUnknownTensor) {
			t.Errorf("unknown section: %v", err)
		}
	}

	sec := mapped.Section(mapped.Tensors()[0])
	if err := mapped.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mapped.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	// Reads after Close fail instead of touching the unmapped memory.
	if _, err := sec.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("section read after Close: %v", err)
	}
	if _, err := mapped.Bytes(mapped.Tensors()[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Bytes after Close: %v", err)
	}
}

// TestFileShrinks: a ReaderAt that loses bytes after validation reports
// ErrTruncated with the tensor's name rather than returning short data.
func TestFileShrinks(t *testing.T) {
	specs := []TensorSpec{{"a", U8, []int64{8}}, {"b", U8, []int64{8}}}
	out := writeMem(t, nil, specs, randomData(specs, 1))
	r := &shrinking{b: out}
	f, err := NewFile(r, int64(len(out)), "shrinks")
	if err != nil {
		t.Fatal(err)
	}
	r.b = r.b[:len(r.b)-4]
	b, _ := f.Lookup("b")
	err = f.ReadTensor(b, make([]byte, 8))
	var fe *FormatError
	if !errors.Is(err, ErrTruncated) || !errors.As(err, &fe) || fe.Tensor != "b" {
		t.Fatalf("got %v", err)
	}
}

type shrinking struct{ b []byte }

func (s *shrinking) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s.b).ReadAt(p, off)
}

func TestDType(t *testing.T) {
	sizes := map[DType]int{Bool: 1, U8: 1, I8: 1, F8E4M3: 1, F8E5M2: 1, U16: 2, I16: 2, F16: 2, BF16: 2,
		U32: 4, I32: 4, F32: 4, U64: 8, I64: 8, F64: 8}
	for d, n := range sizes {
		if d.Size() != n || !d.Valid() {
			t.Errorf("%s: size %d valid %v", d, d.Size(), d.Valid())
		}
	}
	for _, d := range []DType{"", "F4", "f32", "FLOAT"} {
		if d.Size() != 0 || d.Valid() {
			t.Errorf("%q should be invalid", d)
		}
	}
	if (TensorInfo{Shape: nil}).NumElements() != 1 || (TensorInfo{Shape: []int64{3, 0}}).NumElements() != 0 ||
		(TensorInfo{Shape: []int64{1 << 62, 4}}).NumElements() != -1 {
		t.Error("NumElements")
	}
}
