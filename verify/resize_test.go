package verify

import (
	"fmt"
	"image"
	"math"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"golang.org/x/image/draw"
)

func readPNGRGB(t testing.TB, path string) rgbImage {
	t.Helper()
	return toRGB(testenv.ReadPNG(t, path), nil)
}

var goldenFilters = []Resample{ResampleNearest, ResampleLanczos, ResampleBilinear, ResampleBicubic, ResampleBox, ResampleHamming}
var goldenSizes = [][2]int{{32, 24}, {150, 101}, {67, 20}, {20, 45}, {200, 7}, {1, 1}, {29, 45}}

// TestResizeMatchesPillow compares every filter and size with the PNGs
// Pillow 9.4 wrote (testdata/gen_pil_golden.py). The claim is bit-exact
// equality, so the tolerance is zero.
func TestResizeMatchesPillow(t *testing.T) {
	src := readPNGRGB(t, filepath.Join("testdata", "pil", "resize_src.png"))
	for _, r := range goldenFilters {
		for _, sz := range goldenSizes {
			name := fmt.Sprintf("%s_%dx%d", r, sz[0], sz[1])
			t.Run(name, func(t *testing.T) {
				want := readPNGRGB(t, filepath.Join("testdata", "pil", "resize_"+name+".png"))
				got := make([]uint8, 3*sz[0]*sz[1])
				resizeWindow(src, sz[0], sz[1], r, 0, 0, sz[0], sz[1], got, &resizeScratch{})
				diffs, maxd := 0, 0
				for i := range got {
					d := int(got[i]) - int(want.Pix[i])
					if d != 0 {
						if diffs == 0 {
							t.Errorf("first difference at pixel %d channel %d: got %d want %d", i/3, i%3, got[i], want.Pix[i])
						}
						diffs++
						maxd = max(maxd, abs(d))
					}
				}
				if diffs > 0 {
					t.Errorf("%d of %d samples differ from Pillow, max by %d", diffs, len(got), maxd)
				}
			})
		}
	}
}

// TestResizeWindowEqualsCrop checks that computing only a window gives the
// same pixels as the full resize (the crop optimisation must be exact).
func TestResizeWindowEqualsCrop(t *testing.T) {
	src := readPNGRGB(t, filepath.Join("testdata", "pil", "resize_src.png"))
	for _, r := range goldenFilters {
		full := make([]uint8, 3*40*30)
		resizeWindow(src, 40, 30, r, 0, 0, 40, 30, full, &resizeScratch{})
		for _, w := range [][4]int{{0, 0, 40, 30}, {5, 3, 17, 29}, {39, 29, 40, 30}, {0, 10, 40, 11}} {
			x0, y0, x1, y1 := w[0], w[1], w[2], w[3]
			got := make([]uint8, 3*(x1-x0)*(y1-y0))
			resizeWindow(src, 40, 30, r, x0, y0, x1, y1, got, &resizeScratch{})
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					for c := range 3 {
						g := got[((y-y0)*(x1-x0)+(x-x0))*3+c]
						f := full[(y*40+x)*3+c]
						if g != f {
							t.Fatalf("%v window %v: pixel (%d,%d,%d) = %d, full resize has %d", r, w, x, y, c, g, f)
						}
					}
				}
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestDrawCatmullRomVersusPillow measures how far golang.org/x/image/draw's
// CatmullRom (the same a=-0.5 cubic, also widened when shrinking) lands
// from Pillow's BICUBIC, the reason the resampler here is Pillow's
// algorithm rather than draw's. It asserts only that ours is closer; the
// figures go to the log.
func TestDrawCatmullRomVersusPillow(t *testing.T) {
	src := readPNGRGB(t, filepath.Join("testdata", "pil", "resize_src.png"))
	rgba := image.NewRGBA(image.Rect(0, 0, src.W, src.H))
	for i := 0; i < src.W*src.H; i++ {
		copy(rgba.Pix[4*i:4*i+3], src.Pix[3*i:3*i+3])
		rgba.Pix[4*i+3] = 255
	}
	for _, sz := range [][2]int{{32, 24}, {150, 101}} {
		want := readPNGRGB(t, filepath.Join("testdata", "pil", fmt.Sprintf("resize_bicubic_%dx%d.png", sz[0], sz[1])))
		dst := image.NewRGBA(image.Rect(0, 0, sz[0], sz[1]))
		draw.CatmullRom.Scale(dst, dst.Bounds(), rgba, rgba.Bounds(), draw.Src, nil)
		ours := make([]uint8, 3*sz[0]*sz[1])
		resizeWindow(src, sz[0], sz[1], ResampleBicubic, 0, 0, sz[0], sz[1], ours, &resizeScratch{})
		var drawMax, oursMax int
		var drawSum float64
		for i := 0; i < sz[0]*sz[1]; i++ {
			for c := range 3 {
				d := abs(int(dst.Pix[4*i+c]) - int(want.Pix[3*i+c]))
				drawMax = max(drawMax, d)
				drawSum += float64(d)
				oursMax = max(oursMax, abs(int(ours[3*i+c])-int(want.Pix[3*i+c])))
			}
		}
		t.Logf("%dx%d from 67x45: x/image/draw CatmullRom vs Pillow BICUBIC: max |Δ| %d, mean |Δ| %.3f levels; ours max |Δ| %d",
			sz[0], sz[1], drawMax, drawSum/float64(3*sz[0]*sz[1]), oursMax)
		if oursMax > drawMax || oursMax != 0 {
			t.Errorf("ours max |Δ| %d, draw %d", oursMax, drawMax)
		}
	}
}

func TestMakeCoeffsSumToOne(t *testing.T) {
	// Property: the float weights of every output sum to 1, so the fixed-point
	// ones sum to 2^22 within one unit per tap of rounding.
	for _, r := range []Resample{ResampleBilinear, ResampleBicubic, ResampleLanczos, ResampleBox, ResampleHamming} {
		for _, io := range [][2]int{{640, 224}, {224, 640}, {7, 3}, {3, 7}, {1000, 1}} {
			c := makeCoeffs(io[0], io[1], 0, io[1], filters[r])
			for i := range c.start {
				var s int64
				for _, w := range c.k[i*c.ksize : i*c.ksize+c.n[i]] {
					s += int64(w)
				}
				if d := math.Abs(float64(s - 1<<precisionBits)); d > float64(c.n[i]) {
					t.Fatalf("%v %d→%d output %d: weights sum to %d, want %d ± %d", r, io[0], io[1], i, s, 1<<precisionBits, c.n[i])
				}
				if c.start[i] < 0 || c.start[i]+c.n[i] > io[0] {
					t.Fatalf("%v %d→%d output %d: taps [%d,%d) outside the input", r, io[0], io[1], i, c.start[i], c.start[i]+c.n[i])
				}
			}
		}
	}
}
