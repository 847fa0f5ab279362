package verify

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writePNG(t testing.TB, path string, w, h int, c color.Color) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestMatchLabel(t *testing.T) {
	labels := []string{"tench, Tinca tinca", "tabby, tabby cat", "crane", "Egyptian cat", "crane", "maillot", "maillot, tank suit", "LABEL_7"}
	cases := []struct {
		folder string
		want   int // -1: error
	}{
		{"tabby cat", 1}, {"Tabby_Cat", 1}, {"tabby", 1}, {"tabby, tabby cat", 1}, {"TABBY,_TABBY-CAT", 1},
		{"egyptian_cat", 3}, {"tinca tinca", 0},
		{"crane", -1},  // classes 2 and 4 have the same name
		{"maillot", 5}, // whole-name match wins over 6's synonym
		{"tank suit", 6},
		{"label_7", 7}, {"LABEL_7", 7},
		{"3", 3}, {"8", -1}, {"03", -1}, {"-1", -1},
		{"dog", -1},
	}
	for _, tc := range cases {
		got, err := MatchLabel(tc.folder, labels)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("%q matched %d, want an error", tc.folder, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q → %d, %v; want %d", tc.folder, got, err, tc.want)
		}
	}
	// WordNet ids from a LOC_synset_mapping.txt-style labels file.
	wn := []string{"n01440764 tench, Tinca tinca", "n01443537 goldfish, Carassius auratus"}
	if got, err := MatchLabel("n01443537", wn); err != nil || got != 1 {
		t.Errorf("wnid: %d, %v", got, err)
	}
	if got, err := MatchLabel("goldfish", wn); err != nil || got != 1 {
		t.Errorf("name after wnid: %d, %v", got, err)
	}
}

func TestImageFolder(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "tabby_cat", "b.png"), 5, 4, color.RGBA{255, 0, 0, 255})
	writePNG(t, filepath.Join(dir, "tabby_cat", "a.PNG"), 5, 4, color.RGBA{0, 255, 0, 255})
	writePNG(t, filepath.Join(dir, "tabby_cat", "sub", "c.png"), 5, 4, color.RGBA{0, 0, 255, 255})
	writePNG(t, filepath.Join(dir, "goldfish", "x.png"), 5, 4, color.RGBA{9, 9, 9, 255})
	writePNG(t, filepath.Join(dir, ".hidden", "x.png"), 5, 4, color.RGBA{9, 9, 9, 255})
	writePNG(t, filepath.Join(dir, "top.png"), 5, 4, color.RGBA{9, 9, 9, 255})
	os.WriteFile(filepath.Join(dir, "goldfish", "notes.txt"), []byte("x"), 0o644)

	// Without labels: classes are the sorted folder names.
	ds, err := ImageFolder(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Labels, []string{"goldfish", "tabby_cat"}) {
		t.Errorf("labels %v", ds.Labels)
	}
	var got []string
	for _, s := range ds.Samples {
		rel, _ := filepath.Rel(dir, s.Path)
		got = append(got, rel+":"+string(rune('0'+s.Label+1)))
	}
	want := []string{"top.png:0", "goldfish/x.png:1", "tabby_cat/a.PNG:2", "tabby_cat/b.png:2", "tabby_cat/sub/c.png:2"}
	if !slices.Equal(got, want) {
		t.Errorf("samples %v, want %v (label+1 after the colon)", got, want)
	}

	// With id2label-style names.
	ds, err = ImageFolder(dir, []string{"goldfish, Carassius auratus", "x", "tabby, tabby cat"})
	if err != nil {
		t.Fatal(err)
	}
	if ds.FolderLabel["tabby_cat"] != 2 || ds.FolderLabel["goldfish"] != 0 {
		t.Errorf("folder labels %v", ds.FolderLabel)
	}
	if _, err := ImageFolder(dir, []string{"x", "y"}); !errors.Is(err, ErrBadDataset) {
		t.Errorf("unmatched folders: %v", err)
	}
	if _, err := ImageFolder(t.TempDir(), nil); !errors.Is(err, ErrBadDataset) {
		t.Errorf("empty folder: %v", err)
	}
}

func TestReadLabelsFileAndID2Label(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "labels.txt")
	os.WriteFile(p, []byte("cat\r\ndog\n\n\n"), 0o644)
	l, err := ReadLabelsFile(p)
	if err != nil || !slices.Equal(l, []string{"cat", "dog"}) {
		t.Errorf("%v, %v", l, err)
	}
	os.WriteFile(p, []byte("cat\n\ndog\n"), 0o644)
	if _, err := ReadLabelsFile(p); !errors.Is(err, ErrBadDataset) {
		t.Errorf("gap: %v", err)
	}
	os.WriteFile(p, []byte("\n\n"), 0o644)
	if _, err := ReadLabelsFile(p); !errors.Is(err, ErrBadDataset) {
		t.Errorf("empty: %v", err)
	}

	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"id2label":{"1":"b","0":"a","2":"c"}}`), 0o644)
	if l, err := LoadID2Label(cfg); err != nil || !slices.Equal(l, []string{"a", "b", "c"}) {
		t.Errorf("%v, %v", l, err)
	}
	for _, bad := range []string{`{"id2label":{"0":"a","2":"c"}}`, `{"id2label":{"x":"a"}}`, `{}`, `{"id2label":{"0":"a","00":"b"}}`} {
		os.WriteFile(cfg, []byte(bad), 0o644)
		if _, err := LoadID2Label(cfg); !errors.Is(err, ErrBadDataset) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	ref := fixtureDir(t, "reference")
	l, err = LoadID2Label(filepath.Join(ref, "vit", "config.json"))
	if err != nil || len(l) != 10 || l[3] != "LABEL_3" {
		t.Errorf("reference vit id2label: %v, %v", l, err)
	}
}

// TestLoaderSkipsCorruptImages builds a folder with the truncated JPEG
// fixture among good images: the Loader must deliver every good image, in
// order, keep batches full, and list the bad one with its error.
func TestLoaderSkipsCorruptImages(t *testing.T) {
	trunc, err := os.ReadFile(filepath.Join(fixtureDir(t, "images"), "truncated.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	colors := []color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 0, 255}}
	for i, c := range colors {
		writePNG(t, filepath.Join(dir, "c", string(rune('a'+2*i))+".png"), 9, 7, c)
	}
	os.WriteFile(filepath.Join(dir, "c", "b.jpg"), trunc, 0o644)               // between a and c
	os.WriteFile(filepath.Join(dir, "c", "z.png"), []byte("not a png"), 0o644) // last

	p, err := NewPreprocessor(PreprocessorConfig{Class: "ViTImageProcessor", DoResize: true, Size: Size{Height: 4, Width: 4},
		Resample: ResampleBilinear, DoRescale: true, RescaleFactor: 1.0 / 255})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ImageFolder(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 3} {
		l, err := NewLoader(ds, p, workers)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]float32, 3*l.SampleLen())
		var seen []float32 // red channel of each delivered sample
		var sizes []int
		for {
			s, err := l.Next(context.Background(), 3, buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(s))
			for i := range s {
				seen = append(seen, buf[i*l.SampleLen()])
			}
		}
		if !slices.Equal(sizes, []int{3, 1}) || !slices.Equal(seen, []float32{1, 0, 0, 1}) {
			t.Errorf("workers %d: batch sizes %v, red values %v", workers, sizes, seen)
		}
		sk := l.Skipped()
		if len(sk) != 2 || filepath.Base(sk[0].Path) != "b.jpg" || !errors.Is(sk[0].Err, ErrCorruptImage) ||
			filepath.Base(sk[1].Path) != "z.png" || !errors.Is(sk[1].Err, ErrUnsupportedImage) {
			t.Errorf("workers %d: skipped %+v", workers, sk)
		}
		if l.Loaded() != 4 {
			t.Errorf("loaded %d", l.Loaded())
		}
	}
}

func TestLoaderAllBad(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.png"), []byte("junk"), 0o644)
	p, _ := NewPreprocessor(PreprocessorConfig{Class: "ViTImageProcessor", DoResize: true, Size: Size{Height: 2, Width: 2}, Resample: ResampleBilinear})
	ds, err := ImageFolder(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewLoader(ds, p, 1)
	_, err = l.Next(context.Background(), 4, make([]float32, 4*12))
	if !errors.Is(err, ErrNoImages) || !errors.Is(err, ErrUnsupportedImage) {
		t.Errorf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Reset()
	if _, err := l.Next(ctx, 1, make([]float32, 12)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
