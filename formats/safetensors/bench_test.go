package safetensors

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchSpecs is 32 MiB in 8 F32 tensors of 1024×1024, about the size of a
// ViT-Huge MLP weight pair.
func benchSpecs() []TensorSpec {
	var specs []TensorSpec
	for i := range 8 {
		specs = append(specs, TensorSpec{fmt.Sprintf("layer.%d.weight", i), F32, []int64{1024, 1024}})
	}
	return specs
}

func benchFile(b *testing.B) (string, int64) {
	b.Helper()
	specs := benchSpecs()
	data := randomData(specs, 1)
	p := filepath.Join(b.TempDir(), "bench.safetensors")
	w, err := Create(p, nil, specs)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, s := range specs {
		if err := w.WriteTensor(s.Name, data[s.Name]); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data[s.Name]))
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	return p, total
}

// openBoth opens p memory-mapped and through os.File as a ReaderAt.
func openBoth(b *testing.B, p string) map[string]*File {
	b.Helper()
	mapped, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	osf, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	st, _ := osf.Stat()
	plain, err := NewFile(osf, st.Size(), p)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mapped.Close(); osf.Close() })
	return map[string]*File{"mmap": mapped, "readerat": plain}
}

// BenchmarkReadTensor copies every tensor into a reused buffer.
func BenchmarkReadTensor(b *testing.B) {
	p, total := benchFile(b)
	files := openBoth(b, p)
	for _, mode := range []string{"mmap", "readerat"} {
		f := files[mode]
		b.Run(mode, func(b *testing.B) {
			dst := make([]byte, 4<<20)
			b.SetBytes(total)
			b.ReportAllocs()
			tensors := f.Tensors()
			for b.Loop() {
				for _, t := range tensors {
					if err := f.ReadTensor(t, dst[:t.Size]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkBytes gets each tensor with Bytes (zero-copy when mapped, a fresh
// copy otherwise) and touches one byte per 4 KiB page so mapping is not free.
func BenchmarkBytes(b *testing.B) {
	p, total := benchFile(b)
	files := openBoth(b, p)
	for _, mode := range []string{"mmap", "readerat"} {
		f := files[mode]
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			var sink byte
			tensors := f.Tensors()
			for b.Loop() {
				for _, t := range tensors {
					buf, err := f.Bytes(t)
					if err != nil {
						b.Fatal(err)
					}
					for i := 0; i < len(buf); i += 4096 {
						sink += buf[i]
					}
				}
			}
			_ = sink
		})
	}
}

// BenchmarkOpenHeader opens and validates a file with 1,000 small tensors
// (ViT-Huge has about 500): header parsing cost, no data read.
func BenchmarkOpenHeader(b *testing.B) {
	var specs []TensorSpec
	for i := range 1000 {
		specs = append(specs, TensorSpec{fmt.Sprintf("encoder.layer.%d.attention.output.dense.weight", i), F16, []int64{4, 4}})
	}
	out := writeMem(b, map[string]string{"format": "pt"}, specs, randomData(specs, 1))
	p := filepath.Join(b.TempDir(), "many.safetensors")
	os.WriteFile(p, out, 0o644)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkWriter writes 32 MiB: "file" through the real atomic file (with
// fsync and rename), "mem" into memory to show the writer's own overhead.
func BenchmarkWriter(b *testing.B) {
	specs := benchSpecs()
	data := randomData(specs, 2)
	var total int64
	for _, d := range data {
		total += int64(len(d))
	}
	dir := b.TempDir()
	b.Run("file", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			w, err := Create(filepath.Join(dir, "out.safetensors"), nil, specs)
			if err != nil {
				b.Fatal(err)
			}
			for i := len(specs) - 1; i >= 0; i-- { // reverse order: WriteAt, not append
				if err := w.WriteTensor(specs[i].Name, data[specs[i].Name]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mem", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		mem := &memSink{buf: make([]byte, 0, total+4096)}
		for b.Loop() {
			mem.buf = mem.buf[:0]
			w, err := create("mem", nil, specs, func(string) (sink, error) { return mem, nil })
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range specs {
				if err := w.WriteTensor(s.Name, data[s.Name]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
