package onnx

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// FuzzUnmarshal: any input either fails with a classified *FormatError or
// gives a model that marshals, reads back equal, and marshals to the same
// bytes again. Seeds: the writer's output and models written by other tools.
func FuzzUnmarshal(f *testing.F) {
	ext := bigSample()
	dir := f.TempDir()
	if err := WriteFile(filepath.Join(dir, "m.onnx"), ext, WriteOptions{}); err != nil {
		f.Fatal(err)
	}
	withRefs, err := os.ReadFile(filepath.Join(dir, "m.onnx"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		mustMarshal(f, sampleModel()), withRefs, craftedModel(), nestGraphs(3),
		externalModel("location", "w.data", "offset", "0", "length", "16"),
	} {
		f.Add(seed)
	}
	// Small third-party models, when the module cache has them (no skip
	// here: the seeds above suffice). Go's minimizer is quadratic in the
	// input's length, so big seeds make the fuzzer spend its time shrinking
	// rather than exploring.
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output(); err == nil {
		files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "test_data", "*.onnx"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 4<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m1, err := Unmarshal(b)
		if err != nil {
			var fe *FormatError
			if !asFormatError(err, &fe) || fault.ClassOf(err) != fault.Invalid {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		walkTensors(m1.Graph, func(tt *Tensor) error { tt.Data(); return nil })
		b2, err := m1.Marshal()
		if err != nil {
			t.Fatalf("accepted model does not marshal: %v", err)
		}
		m2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if d := diffDeep(m1, m2); d != "" {
			t.Fatalf("model changed through marshal and unmarshal at %s", d)
		}
		if b3 := mustMarshal(t, m2); !bytes.Equal(b2, b3) {
			t.Fatal("second marshal differs")
		}
	})
}

func asFormatError(err error, fe **FormatError) bool {
	e, ok := err.(*FormatError)
	*fe = e
	return ok
}

// TestFuzzRegressions keeps what the fuzzer found as named cases (the raw
// inputs are also in testdata/fuzz/FuzzUnmarshal).
func TestFuzzRegressions(t *testing.T) {
	cases := []struct {
		name string
		in   pb
	}{
		// A STRING attribute without s: the writer emits s = "", which
		// reads back as an empty, non-nil S.
		{"string attribute without s", pb{}.msg(7, pb{}.msg(1, pb{}.msg(5, pb{}.str(1, "a").varint(20, uint64(AttrTypeString)))))},
		// An empty packed run of dims: nothing to write back, so it must
		// not be recorded as a packing preference.
		{"empty packed dims", pb{}.msg(7, pb{}.msg(5, pb{}.str(1, "").varint(2, uint64(Float)).str(9, "abcd")))},
	}
	for _, c := range cases {
		m1, err := Unmarshal(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		m2 := mustUnmarshal(t, mustMarshal(t, m1))
		if d := diffDeep(m1, m2); d != "" {
			t.Errorf("%s: differs at %s", c.name, d)
		}
	}
	// A packed varint run ending inside a value was once read as empty.
	if _, err := Unmarshal(tensorModel(pb{}.varint(2, uint64(Int64)).str(7, "\xff"))); !errors.Is(err, ErrTruncated) {
		t.Errorf("unterminated packed varint: %v", err)
	}
}

// FuzzCheckLocation: a location the reader accepts, joined to a model
// directory, stays inside that directory.
func FuzzCheckLocation(f *testing.F) {
	for _, s := range []string{"model.onnx.data", "./w.data", "a/../b", "../x", "/etc/passwd", `..\x`, "C:x", "a/b/c", "...", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		if checkLocation(loc) != "" {
			return
		}
		const dir = "/models/vit"
		p := filepath.Join(dir, filepath.FromSlash(loc))
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("accepted %q resolves to %q", loc, p)
		}
	})
}
