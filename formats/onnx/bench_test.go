package onnx

import (
	"io"
	"path/filepath"
	"strconv"
	"testing"
)

// model300MB returns a ViT-Base-like model: 100 FLOAT initializers of 3 MB
// (300 MB in all) held in memory, or produced by Sources that copy from one
// shared buffer (the path of a converter streaming its output).
func model300MB(source bool) *Model {
	const n, size = 100, 3 << 20
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = patternByte(int64(i), 7)
	}
	g := &Graph{Name: "g"}
	for i := range n {
		name := "w" + strconv.Itoa(i)
		dims := []int64{768, size / 4 / 768}
		var t *Tensor
		if source {
			t = TensorSource(name, Float, dims, size, func(w io.Writer) error { _, err := w.Write(buf); return err })
		} else {
			raw := make([]byte, size)
			copy(raw, buf)
			t = TensorRaw(name, Float, dims, raw)
		}
		g.Initializers = append(g.Initializers, t)
		g.AddNode("MatMul", []string{"x" + strconv.Itoa(i), name}, []string{"x" + strconv.Itoa(i+1)})
	}
	return &Model{IRVersion: 10, Opsets: []*OpsetID{Opset("", 21)}, Graph: g}
}

func BenchmarkWriteFile300MB(b *testing.B) {
	for _, source := range []bool{false, true} {
		name := "raw"
		if source {
			name = "source"
		}
		b.Run(name, func(b *testing.B) {
			m := model300MB(source)
			path := filepath.Join(b.TempDir(), "model.onnx")
			b.SetBytes(300 << 20)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := WriteFile(path, m, WriteOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadFile300MB reads the model part and checks every external
// reference; the weights themselves are not read.
func BenchmarkReadFile300MB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "model.onnx")
	if err := WriteFile(path, model300MB(true), WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	m := sampleModel()
	size := len(mustMarshal(b, m))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for range b.N {
		if _, err := m.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	data := mustMarshal(b, sampleModel())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for range b.N {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
