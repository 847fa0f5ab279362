package onnx

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Issue 17 case 10: WriteFile stops at the next external tensor once its
// context is cancelled (export used to react to SIGINT only after writing
// all of model.onnx.data), and leaves no file behind.
func TestWriteFileCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := bigSample()
	later := 0
	m.Graph.Initializers = append(m.Graph.Initializers,
		// The signal lands while this tensor is written; the ones after it
		// must not be.
		TensorSource("cancel_here", Uint8, []int64{4096}, 4096, func(w io.Writer) error {
			cancel()
			_, err := w.Write(make([]byte, 4096))
			return err
		}),
		TensorSource("after", Uint8, []int64{4096}, 4096, func(w io.Writer) error {
			later++
			_, err := w.Write(make([]byte, 4096))
			return err
		}))
	dir := t.TempDir()
	err := WriteFile(filepath.Join(dir, "model.onnx"), m, WriteOptions{Context: ctx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteFile: %v, want context.Canceled", err)
	}
	if later != 0 {
		t.Error("a tensor after the cancellation was still produced")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left behind", len(ents))
	}
}
