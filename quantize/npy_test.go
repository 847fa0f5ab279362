package quantize

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"codeberg.org/sbinet/npyio"

	"github.com/quantpack/quantpack/verify"
)

var xInput = []verify.IOInfo{{Name: "x", DType: verify.Float32, Shape: []int64{-1, 4}}}

func TestNpySourceStreams(t *testing.T) {
	want := xSamples(10)
	p := writeNpy(t, want)
	s, err := NewNpySource([]string{p}, xInput, 7, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []float32
	var sizes []int64
	for {
		b, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, b[0].Shape[0])
		got = append(got, b[0].F32...)
	}
	if len(sizes) != 3 || sizes[2] != 1 || len(got) != 28 {
		t.Fatalf("batches %v, %d values; want 3+3+1 samples of 4", sizes, len(got))
	}
	for i, v := range got {
		if v != want[i/4][i%4] {
			t.Fatalf("value %d: %v, want %v", i, v, want[i/4][i%4])
		}
	}
	if info := s.Info(); info.Count != 7 || info.Kind != "npy" {
		t.Errorf("info %+v", info)
	}
}

func TestNpyMalformed(t *testing.T) {
	var good bytes.Buffer
	if err := npyio.Write(&good, xSamples(3)); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	huge := append([]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), g[10:]...)
	noNewline := bytes.ReplaceAll(bytes.Clone(g), []byte("\n"), []byte(" "))
	for name, b := range map[string][]byte{
		"empty": nil, "magic": []byte("NUMPY not"), "truncated data": g[:len(g)-5],
		"truncated header": g[:20], "huge header": huge, "no newline": noNewline,
		"version": append([]byte("\x93NUMPY\x09\x00"), g[8:]...),
	} {
		p := filepath.Join(t.TempDir(), "bad.npy")
		os.WriteFile(p, b, 0o644)
		_, err := NewNpySource([]string{p}, xInput, 0, 2)
		if !errors.Is(err, ErrBadNpy) {
			t.Errorf("%s: %v, want ErrBadNpy", name, err)
		}
	}
}

// FuzzNpy feeds arbitrary bytes to the .npy reader: it may fail, never
// panic, and whatever it accepts must stream to the end without error.
func FuzzNpy(f *testing.F) {
	var good bytes.Buffer
	npyio.Write(&good, xSamples(3))
	f.Add(good.Bytes())
	f.Add([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f.npy")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Skip()
		}
		s, err := NewNpySource([]string{p}, xInput, 0, 2)
		if err != nil {
			return
		}
		defer s.Close()
		for {
			if _, err := s.Next(context.Background()); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("accepted file fails while streaming: %v", err)
				}
				return
			}
		}
	})
}
