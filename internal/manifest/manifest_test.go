package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestScanAndDiff(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("abc"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte(""), 0o644)
	os.WriteFile(filepath.Join(dir, Name), []byte(`{}`), 0o644)
	files, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "a.bin" || files[1].Path != "sub/b.txt" {
		t.Fatalf("scan = %+v", files)
	}
	// sha256("abc"), an independent constant.
	if files[0].SHA256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || files[0].Size != 3 {
		t.Fatalf("hash = %+v", files[0])
	}
	if d := Diff(files, files); len(d) != 0 {
		t.Fatalf("diff of equal lists: %v", d)
	}
	changed := append([]File(nil), files...)
	changed[0].SHA256 = "00"
	changed = changed[:1]
	if d := Diff(changed, files); len(d) != 2 {
		t.Fatalf("diff = %v, want hash change and extra file", d)
	}
}

// Issue 17 case 10: hashing stops on a cancelled context instead of reading
// the whole file first.
func TestHashFileContextCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, make([]byte, hashChunk+1), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := HashFileContext(ctx, p); !errors.Is(err, context.Canceled) {
		t.Errorf("HashFileContext(cancelled): %v, want context.Canceled", err)
	}
	a, err1 := HashFileContext(context.Background(), p)
	b, err2 := HashFile(p)
	if err1 != nil || err2 != nil || a != b || a.Size != hashChunk+1 {
		t.Errorf("HashFileContext %+v %v, HashFile %+v %v", a, err1, b, err2)
	}
}

// TestHashModelFiles: the model alone, then with its external data file;
// a missing model is an error, a missing data file is not.
func TestHashModelFiles(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.onnx")
	if _, _, err := HashModelFiles(model); err == nil {
		t.Fatal("missing model accepted")
	}
	os.WriteFile(model, []byte("abc"), 0o644)
	files, total, err := HashModelFiles(model)
	if err != nil || len(files) != 1 || total != 3 ||
		files[0].SHA256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("model only: %+v %d %v", files, total, err)
	}
	os.WriteFile(model+".data", make([]byte, 5), 0o644)
	files, total, err = HashModelFiles(model)
	if err != nil || len(files) != 2 || total != 8 {
		t.Fatalf("with data: %+v %d %v", files, total, err)
	}
}
