package heatmap

import (
	"errors"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/vg"
)

// TestWriteRowOrderAndColours: the first row is drawn at the top, each
// cell in its value's colour over a cell's area, a NaN cell not at all, and
// the legend's colour bar beside it.
func TestWriteRowOrderAndColours(t *testing.T) {
	cm := moreland.SmoothBlueRed()
	cm.SetMin(0)
	cm.SetMax(1)
	m := Map{Title: "t", Rows: []string{"top", "bottom"}, Cols: []string{"a", "b"},
		Values: [][]float64{{1, math.NaN()}, {0, math.NaN()}}, Labels: [][]string{{"", ""}, {"", ""}},
		Colors: cm, LegendTitle: "l", Width: 6 * vg.Inch, Height: 4 * vg.Inch, LegendWidth: vg.Inch}
	path := filepath.Join(t.TempDir(), "h.png")
	if err := Write(path, m); err != nil {
		t.Fatal(err)
	}
	img := testenv.ReadPNG(t, path)
	if w, h := Size(m.Width, m.Height); img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("image %v, Size says %d×%d", img.Bounds(), w, h)
	}
	hot, _ := cm.At(1)
	cold, _ := cm.At(0)
	same := func(a, b color.Color) bool {
		ar, ag, ab, _ := a.RGBA()
		br, bg, bb, _ := b.RGBA()
		return ar>>8 == br>>8 && ag>>8 == bg>>8 && ab>>8 == bb>>8
	}
	// Mean y of each colour's pixels left of the legend strip.
	legendX := img.Bounds().Dx() - int(DPI*1)
	var hotY, coldY, nHot, nCold float64
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := 0; x < legendX; x++ {
			switch c := img.At(x, y); {
			case same(c, hot):
				hotY += float64(y)
				nHot++
			case same(c, cold):
				coldY += float64(y)
				nCold++
			}
		}
	}
	// A cell is about a quarter of a 576×384-pixel plot: thousands of
	// pixels each.
	if nHot < 5000 || nCold < 5000 {
		t.Fatalf("%v hot and %v cold pixels: the cells were not painted", nHot, nCold)
	}
	if hotY/nHot >= coldY/nCold {
		t.Fatalf("the first row (hot) is drawn at mean y %.0f, below the second (cold) at %.0f", hotY/nHot, coldY/nCold)
	}
	// The NaN column stays unpainted: the hot and cold cells take no more
	// than the left half of the plot.
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := legendX * 3 / 4; x < legendX-10; x++ {
			if c := img.At(x, y); same(c, hot) || same(c, cold) {
				t.Fatalf("pixel (%d, %d) in the NaN column is painted %v", x, y, c)
			}
		}
	}
	// The colour bar is drawn in the legend strip.
	n := 0
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := legendX; x < img.Bounds().Dx(); x++ {
			if c := img.At(x, y); same(c, hot) || same(c, cold) {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no colour bar in the legend strip")
	}
}

// TestWriteShapes: values that do not match the rows and columns are an
// error, and nothing is written.
func TestWriteShapes(t *testing.T) {
	cm := moreland.SmoothBlueRed()
	path := filepath.Join(t.TempDir(), "h.png")
	for _, m := range []Map{
		{Rows: []string{"a"}, Cols: []string{"x"}},
		{Rows: []string{"a"}, Cols: []string{"x", "y"}, Values: [][]float64{{1}}},
		{Cols: []string{"x"}},
	} {
		m.Colors = cm
		if err := Write(path, m); err == nil {
			t.Fatalf("%+v: no error", m)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a file was written: %v", err)
		}
	}
}

// TestDiscreteEveryBin: every bin of a discrete palette has a colour,
// including the middle one that gonum's own sampling leaves nil.
func TestDiscreteEveryBin(t *testing.T) {
	cm := moreland.SmoothBlueRed()
	cm.SetMin(-1)
	cm.SetMax(1)
	cols := Discrete(cm, -1, 1, Bins).Colors()
	for i, c := range cols {
		if c == nil {
			t.Fatalf("bin %d has no colour", i)
		}
		if _, _, _, a := c.RGBA(); a == 0 {
			t.Fatalf("bin %d is transparent", i)
		}
	}
	if mid, _ := cm.At(0); cols[Bins/2] != mid {
		t.Fatalf("middle bin %v, want %v", cols[Bins/2], mid)
	}
}
