package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"

	"github.com/quantpack/quantpack/internal/fault"
)

// FuzzOpen feeds arbitrary bytes to the reader. It must never panic; a
// rejected input must carry a corrupt/unsupported class and a location; an
// accepted one must have every tensor inside the file, tiling the data, and
// must round-trip through the writer with the same tensors and metadata.
// Seeds: writer output, every malformed case of TestMalformed, and the
// fixtures when they are present.
func FuzzOpen(f *testing.F) {
	specs := testSpecs()
	f.Add(writeMem(f, map[string]string{"format": "pt"}, specs, randomData(specs, 1)))
	f.Add(writeMem(f, nil, specs[:2], randomData(specs[:2], 2)))
	f.Add(writeMem(f, nil, nil, nil))
	for _, c := range badCases() {
		if len(c.data) < 1<<16 {
			f.Add(c.data)
		}
	}
	if dir, ok := testenv.Lookup("safetensors"); ok {
		paths, _ := filepath.Glob(filepath.Join(dir, "*", "*.safetensors"))
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := NewFile(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if c := fault.ClassOf(err); c != fault.Invalid && c != fault.Unsupported {
				t.Fatalf("rejected with class %v: %v", c, err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != "fuzz" {
				t.Fatalf("rejection without a location: %v", err)
			}
			return
		}
		checkLayout(t, file, int64(len(data)))
		specs, tensors := specsOf(t, file)
		out := writeMem(t, file.Metadata(), specs, tensors)
		again, err := NewFile(bytes.NewReader(out), int64(len(out)), "rewritten")
		if err != nil {
			t.Fatalf("writer output rejected: %v", err)
		}
		sameContent(t, file, again)
	})
}
