package bundle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// An output directory written with a trailing slash, or through "./", is
// the same directory as without: unpack once made its temporary directory
// from filepath.Dir("deploy/") = "deploy", i.e. inside the target, and then
// refused the target as not empty.
func TestUnpackUncleanOutputPath(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, good, sampleMeta)
	bundle, _ := packDir(t, src, PackOptions{})
	for _, rel := range []string{"deploy/", "sub/deploy/", "./deploy2/", "x//y/./z/"} {
		t.Run(rel, func(t *testing.T) {
			root := t.TempDir()
			out := root + string(filepath.Separator) + filepath.FromSlash(rel)
			res, err := Unpack(context.Background(), bundle, out, UnpackOptions{})
			if err != nil {
				t.Fatalf("Unpack into %q: %v", rel, err)
			}
			clean := filepath.Clean(out)
			if res.Dir != clean {
				t.Errorf("result dir = %q, want the clean %q", res.Dir, clean)
			}
			if got := readTree(t, clean); !bytes.Equal(got["dir/b.bin"], good["dir/b.bin"]) {
				t.Errorf("files not unpacked into %s: %v", clean, dirNames(t, clean))
			}
			// Nothing else beside the target: no temporary directory left.
			parent := filepath.Dir(clean)
			if names := dirNames(t, parent); len(names) != 1 {
				t.Errorf("%s holds %v, want only %s", parent, names, filepath.Base(clean))
			}
			if res, err := Check(context.Background(), out, UnpackOptions{}); err != nil || !res.OK {
				t.Errorf("Check(%q) after unpack: %v", rel, err)
			}
		})
	}
}

// pack refuses an existing output file unless told to overwrite it, and
// never writes over a directory.
func TestPackExistingOutput(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, good, sampleMeta)
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(out, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Pack(context.Background(), src, out, PackOptions{})
	if !errors.Is(err, ErrOutputFileExists) || fault.ClassOf(err) != fault.Usage {
		t.Fatalf("existing output: err = %v, want ErrOutputFileExists (usage)", err)
	}
	if !strings.Contains(err.Error(), out) {
		t.Errorf("error %q does not name %s", err, out)
	}
	if b, _ := os.ReadFile(out); string(b) != "mine" {
		t.Errorf("refused pack changed %s: %q", out, b)
	}
	if names := dirNames(t, filepath.Dir(out)); len(names) != 1 {
		t.Errorf("refused pack left %v", names)
	}
	if _, err := Pack(context.Background(), src, out, PackOptions{Overwrite: true}); err != nil {
		t.Fatalf("Overwrite: %v", err)
	}
	if res, err := Check(context.Background(), out, UnpackOptions{}); err != nil || !res.OK {
		t.Errorf("overwritten bundle does not check: %v", err)
	}
	dir := t.TempDir()
	if _, err := Pack(context.Background(), src, dir, PackOptions{Overwrite: true}); !errors.Is(err, ErrOutputFileExists) {
		t.Errorf("directory as output: err = %v, want ErrOutputFileExists", err)
	}
}

// A directory check's error names the mismatch once, then the first
// difference; it used to repeat "bundle: files differ from manifest".
func TestCheckDirMessageOnce(t *testing.T) {
	dir := t.TempDir()
	writeArtifact(t, dir, good, sampleMeta)
	if err := os.WriteFile(filepath.Join(dir, "extra.bin"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Check(context.Background(), dir, UnpackOptions{})
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	if n := strings.Count(err.Error(), ErrMismatch.Error()); n != 1 {
		t.Errorf("%q says %q %d times, want once", err, ErrMismatch, n)
	}
	if !strings.Contains(err.Error(), "extra.bin: not in manifest") {
		t.Errorf("%q does not name the first difference", err)
	}
}

// pack makes the bundle's missing parent directories, and removes them when
// it fails.
func TestPackMakesParents(t *testing.T) {
	src := t.TempDir()
	writeArtifact(t, src, good, sampleMeta)
	root := t.TempDir()
	out := filepath.Join(root, "a", "b", "x.tar.zst")
	if _, err := Pack(context.Background(), src, out, PackOptions{}); err != nil {
		t.Fatalf("Pack into missing parents: %v", err)
	}
	if res, err := Check(context.Background(), out, UnpackOptions{}); err != nil || !res.OK {
		t.Errorf("bundle in made parents does not check: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root2 := t.TempDir()
	if _, err := Pack(ctx, src, filepath.Join(root2, "a", "b", "x.tar.zst"), PackOptions{}); err == nil {
		t.Fatal("Pack with a cancelled context succeeded")
	}
	if names := dirNames(t, root2); len(names) != 0 {
		t.Errorf("failed pack left %v", names)
	}
}
