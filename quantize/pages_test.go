package quantize

import (
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// textPages writes n document-like pictures into a new folder and returns
// it: size×size white pages with lines of dark handwritten digits (the
// 28×28 cells of the digit folder src, inverted, some lines at twice the
// size), words of 2–6 digits. A text detector sees text where the digit
// fixtures alone are one blurred blob on black; calibration pages are made
// from trained/calib and test pages from trained/images, so the two sets
// share no digit. Deterministic in seed.
func textPages(t testing.TB, src string, n, size int, seed uint64) string {
	t.Helper()
	var files []string
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Ext(p) == ".png" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	cells := make([]*image.Gray, 0, len(files))
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		g := image.NewGray(img.Bounds())
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				g.Set(x, y, img.At(x, y))
			}
		}
		cells = append(cells, g)
	}
	if len(cells) == 0 {
		t.Fatalf("no digit cells under %s", src)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	dir := t.TempDir()
	for i := range n {
		page := image.NewGray(image.Rect(0, 0, size, size))
		for j := range page.Pix {
			page.Pix[j] = 235 + uint8(r.IntN(20)) // paper
		}
		ink := uint8(r.IntN(60))
		for y := 8 + r.IntN(8); ; {
			scale := 1
			if r.IntN(4) == 0 {
				scale = 2
			}
			h := 28 * scale
			if y+h > size {
				break
			}
			for x := 8 + r.IntN(24); ; {
				word := 2 + r.IntN(5)
				if x+word*20*scale > size {
					break
				}
				for range word {
					c := cells[r.IntN(len(cells))]
					for cy := range h {
						for cx := range h {
							v := c.GrayAt(cx/scale, cy/scale).Y // white digit on black
							if v > 40 {
								// Darken the paper towards the ink by the stroke's strength.
								p := &page.Pix[(y+cy)*page.Stride+x+cx]
								*p = uint8((int(*p)*(255-int(v)) + int(ink)*int(v)) / 255)
							}
						}
					}
					x += 20 * scale // the cells' 4-pixel margins overlap: a handwritten word
				}
				x += 14 * scale
			}
			y += h + 6 + r.IntN(14)
		}
		out, err := os.Create(filepath.Join(dir, fmt.Sprintf("page%03d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(out, page); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
