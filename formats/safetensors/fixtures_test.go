package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/quantpack/quantpack/internal/fault"
)

// decodeF16 is a from-the-definition IEEE 754 binary16 decoder, used as the
// reference for the F16 sample (exact: every binary16 is a float64).
func decodeF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, mant := int(h>>10&0x1f), float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1024+mant, exp-25)
}

// decodeAll decodes LE elements of dt into float64 (integers exactly).
func decodeAll(t *testing.T, dt DType, b []byte) []float64 {
	t.Helper()
	n := len(b) / dt.Size()
	out := make([]float64, n)
	for i := range out {
		e := b[i*dt.Size():]
		switch dt {
		case U8:
			out[i] = float64(e[0])
		case I8:
			out[i] = float64(int8(e[0]))
		case U16:
			out[i] = float64(binary.LittleEndian.Uint16(e))
		case I16:
			out[i] = float64(int16(binary.LittleEndian.Uint16(e)))
		case U32:
			out[i] = float64(binary.LittleEndian.Uint32(e))
		case I32:
			out[i] = float64(int32(binary.LittleEndian.Uint32(e)))
		case F16:
			out[i] = decodeF16(binary.LittleEndian.Uint16(e))
		case F32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(e)))
		case F64:
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(e))
		default:
			t.Fatalf("no decoder for %s", dt)
		}
	}
	return out
}

// TestHFSamples checks each dtype sample of the official library: values
// -3..2 cast to the dtype (unsigned ones wrap modulo 2^bits, as numpy's
// astype does), metadata {"test":"a"}, unaligned header. Comparison is exact:
// all six values are representable in every dtype.
func TestHFSamples(t *testing.T) {
	dir := fixtureDir(t, "hf-samples")
	dtypes := map[string]DType{"B": U8, "b": I8, "H": U16, "h": I16, "I": U32, "i": I32, "e": F16, "f": F32, "d": F64}
	want := func(dt DType) []float64 {
		out := make([]float64, 6)
		for i := range out {
			v := float64(i - 3)
			if bitsOf := dt.Size() * 8; (dt == U8 || dt == U16 || dt == U32) && v < 0 {
				v += math.Ldexp(1, bitsOf)
			}
			out[i] = v
		}
		return out
	}
	check := func(t *testing.T, f *File, name string, dt DType) {
		ti, ok := f.Lookup(name)
		if !ok {
			t.Fatalf("%s: no tensor %q", f.Name(), name)
		}
		if ti.DType != dt || !slices.Equal(ti.Shape, []int64{6}) || ti.Size != int64(6*dt.Size()) || ti.NumElements() != 6 {
			t.Fatalf("%s: %+v", name, ti)
		}
		b, err := f.Bytes(ti)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, dt, b); !slices.Equal(got, want(dt)) {
			t.Errorf("%s %s = %v, want %v", name, dt, got, want(dt))
		}
	}
	for name, dt := range dtypes {
		f, err := Open(filepath.Join(dir, name+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Tensors()) != 1 || f.Metadata()["test"] != "a" || len(f.Metadata()) != 1 {
			t.Errorf("%s: tensors %v metadata %v", name, f.Tensors(), f.Metadata())
		}
		if f.HeaderSize()%8 == 0 {
			t.Errorf("%s: header size %d is aligned; the 2022 samples are not", name, f.HeaderSize())
		}
		check(t, f, name, dt)
		f.Close()
	}
	f, err := Open(filepath.Join(dir, "overall.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors()) != len(dtypes) {
		t.Fatalf("overall: %d tensors", len(f.Tensors()))
	}
	for name, dt := range dtypes {
		check(t, f, name, dt)
	}
}

func TestBurnFixtures(t *testing.T) {
	dir := fixtureDir(t, "burn")
	f, err := Open(filepath.Join(dir, "batch_norm2d.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nbt, ok := f.Lookup("norm1.num_batches_tracked")
	if !ok || nbt.DType != I64 || len(nbt.Shape) != 0 || nbt.Size != 8 || nbt.NumElements() != 1 {
		t.Fatalf("0-dim tensor: %+v", nbt)
	}
	if f.HeaderSize()%8 != 0 {
		t.Errorf("header size %d: torch's writer pads to 8", f.HeaderSize())
	}

	g, err := Open(filepath.Join(dir, "boolean.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	b, ok := g.Lookup("buffer")
	if !ok || b.DType != Bool || !slices.Equal(b.Shape, []int64{3}) {
		t.Fatalf("bool buffer: %+v", b)
	}
	data, err := g.Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, []byte{1, 0, 1}) {
		t.Errorf("bool buffer = %v", data)
	}
}

func TestMiscFixtures(t *testing.T) {
	dir := fixtureDir(t, "misc")
	f, err := Open(filepath.Join(dir, "candle-jfk-codes.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, ok := f.Lookup("codes")
	if !ok || c.DType != I64 || !slices.Equal(c.Shape, []int64{1, 2, 828}) || c.NumElements() != 1656 {
		t.Fatalf("codes: %+v", c)
	}

	_, err = Open(filepath.Join(dir, "syoyo-abuse-attempt-1.safetensors"))
	var fe *FormatError
	if !errors.Is(err, ErrTruncated) || fault.ClassOf(err) != fault.Invalid || !errors.As(err, &fe) || fe.Offset != 0 {
		t.Fatalf("abuse attempt: %v", err)
	}
}

// TestFixturesCrossCheck compares every fixture with the independent parser
// of github.com/nlpodyssey/safetensors (same names, dtypes, shapes, bytes),
// and the mmap path with the ReaderAt path.
func TestFixturesCrossCheck(t *testing.T) {
	for _, p := range fixtureFiles(t) {
		t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), func(t *testing.T) {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !f.Mapped() {
				t.Error("fixture not memory-mapped")
			}
			whole, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := nlp.Deserialize(whole)
			if err != nil {
				t.Fatalf("reference parser rejects it: %v", err)
			}
			if ref.Len() != len(f.Tensors()) {
				t.Fatalf("%d tensors, reference %d", len(f.Tensors()), ref.Len())
			}
			for _, nt := range ref.Tensors() {
				ti, ok := f.Lookup(nt.Name)
				if !ok {
					t.Fatalf("missing %q", nt.Name)
				}
				shape := make([]int64, len(nt.TensorView.Shape()))
				for i, d := range nt.TensorView.Shape() {
					shape[i] = int64(d)
				}
				if string(ti.DType) != nt.TensorView.DType().String() || !slices.Equal(ti.Shape, shape) {
					t.Fatalf("%q: %s %v, reference %s %v", nt.Name, ti.DType, ti.Shape, nt.TensorView.DType(), shape)
				}
				b, err := f.Bytes(ti)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, nt.TensorView.Data()) {
					t.Fatalf("%q: bytes differ from the reference", nt.Name)
				}
			}
			_, refMeta, err := nlp.ReadMetadata(whole)
			if err != nil {
				t.Fatal(err)
			}
			if m := refMeta.Metadata(); len(m) != len(f.Metadata()) || m["test"] != f.Metadata()["test"] {
				t.Fatalf("metadata %v, reference %v", f.Metadata(), m)
			}

			osf, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer osf.Close()
			g, err := NewFile(osf, int64(len(whole)), p)
			if err != nil {
				t.Fatal(err)
			}
			if g.Mapped() || g.HeaderSize() != f.HeaderSize() || !slices.EqualFunc(g.Tensors(), f.Tensors(), sameInfo) {
				t.Fatal("ReaderAt path disagrees with the mmap path")
			}
			sameContent(t, f, g)
		})
	}
}

func sameInfo(a, b TensorInfo) bool {
	return a.Name == b.Name && a.DType == b.DType && slices.Equal(a.Shape, b.Shape) && a.Offset == b.Offset && a.Size == b.Size
}

// TestFixturesRoundTrip reads each fixture, writes it with the writer and
// reads it back: same tensors, bytes and metadata; a second write gives the
// same bytes.
func TestFixturesRoundTrip(t *testing.T) {
	for _, p := range fixtureFiles(t) {
		f, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		specs, data := specsOf(t, f)
		out := writeMem(t, f.Metadata(), specs, data)
		g, err := NewFile(bytes.NewReader(out), int64(len(out)), "rewritten")
		if err != nil {
			t.Fatalf("%s rewritten: %v", p, err)
		}
		sameContent(t, f, g)
		if g.HeaderSize()%8 != 0 {
			t.Errorf("%s: rewritten header size %d not aligned", p, g.HeaderSize())
		}
		specs2, data2 := specsOf(t, g)
		if again := writeMem(t, g.Metadata(), specs2, data2); !bytes.Equal(again, out) {
			t.Errorf("%s: second write differs", p)
		}
		f.Close()
	}
}
