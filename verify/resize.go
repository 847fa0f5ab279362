package verify

import (
	"math"

	"github.com/quantpack/quantpack/internal/hfconfig"
)

// Resample is a resampling filter by its Pillow code (hfconfig.Resample).
type Resample = hfconfig.Resample

// Pillow's filter codes (PIL.Image.Resampling).
const (
	ResampleNearest  = hfconfig.ResampleNearest
	ResampleLanczos  = hfconfig.ResampleLanczos
	ResampleBilinear = hfconfig.ResampleBilinear
	ResampleBicubic  = hfconfig.ResampleBicubic
	ResampleBox      = hfconfig.ResampleBox
	ResampleHamming  = hfconfig.ResampleHamming
)

// The resampler below reproduces Pillow's Image.resize for 8-bit images
// (libImaging/Resample.c, the code path transformers' image processors take):
// separable convolution, horizontal pass first into an 8-bit intermediate,
// then vertical; the kernel is stretched by the scale factor when shrinking
// (which is what makes Pillow's downscaling antialiased); weights are
// computed in float64, normalised to sum 1, then rounded to fixed point with
// 22 fractional bits; sums start at one half and are clipped to 0..255.
// Matching those steps makes our pixels equal to Pillow's, which the tests
// check against files that Pillow wrote (testdata/gen_pil_golden.py).
//
// golang.org/x/image/draw's CatmullRom is the same a=-0.5 cubic and also
// widens the kernel when shrinking, but it filters in 16-bit premultiplied
// colour with float64 intermediates and different rounding, so its pixels
// differ from Pillow's; TestDrawCatmullRomVersusPillow measures by how much.

type filter struct {
	fn      func(float64) float64
	support float64
}

// The float64(...) conversions stop the compiler from fusing a multiply and
// an add into one FMA, which would round differently from Pillow's C.
func bicubicFilter(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64((a+2)*x) - (a + 3)
		return float64(float64(t*x)*x) + 1
	}
	if x < 2 {
		t := float64((x-5)*x) + 8
		return (float64(t*x) - 4) * a
	}
	return 0
}

func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

func boxFilter(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

func hammingFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x == 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	x *= math.Pi
	// Pillow writes 0.54f and 0.46f: single-precision constants.
	return math.Sin(x) / x * float64(float64(float32(0.54))+float64(float64(float32(0.46))*math.Cos(x)))
}

func sincFilter(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func lanczosFilter(x float64) float64 {
	if -3 <= x && x < 3 {
		return sincFilter(x) * sincFilter(x/3)
	}
	return 0
}

var filters = map[Resample]filter{
	ResampleBox:      {boxFilter, 0.5},
	ResampleBilinear: {bilinearFilter, 1},
	ResampleHamming:  {hammingFilter, 1},
	ResampleBicubic:  {bicubicFilter, 2},
	ResampleLanczos:  {lanczosFilter, 3},
}

// precisionBits is Pillow's PRECISION_BITS: 32 bits less 8 for the pixel
// value and 2 for the overshoot of kernels with negative lobes.
const precisionBits = 32 - 8 - 2

// axisCoeffs holds one axis's fixed-point weights for the output indices
// [first, first+len(start)).
type axisCoeffs struct {
	ksize int
	first int
	start []int   // first input index of each output's taps
	n     []int   // number of taps
	k     []int32 // ksize weights per output
}

// makeCoeffs is Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc, for the outputs [from, to) of an inSize→outSize
// resize only (each output's weights depend on its own index alone).
func makeCoeffs(inSize, outSize, from, to int, f filter) axisCoeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := f.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	m := to - from
	c := axisCoeffs{ksize: ksize, first: from, start: make([]int, m), n: make([]int, m), k: make([]int32, m*ksize)}
	w := make([]float64, ksize)
	ss := 1 / filterscale
	for i := range m {
		xx := from + i
		center := (float64(xx) + 0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		n := xmax - xmin
		if n > ksize { // cannot happen (ksize ≥ 2·support+1); guards the slice below
			n = ksize
		}
		ww := 0.0
		for x := range n {
			w[x] = f.fn(float64(float64(x+xmin)-center+0.5) * ss)
			ww += w[x]
		}
		kk := c.k[i*ksize : (i+1)*ksize]
		for x := range n {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				kk[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				kk[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[i], c.n[i] = xmin, n
	}
	return c
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// rgbImage is 8-bit RGB, interleaved, rows of 3·W bytes.
type rgbImage struct {
	W, H int
	Pix  []uint8
}

// resizeScratch keeps the intermediate buffers of one worker between images.
type resizeScratch struct {
	tmp []uint8
	acc []int32
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// resizeWindow writes the pixels [x0,x1)×[y0,y1) of src resized to
// outW×outH into dst (3·(x1-x0)·(y1-y0) bytes, RGB interleaved). The window
// must lie inside the resized image. The result equals cropping Pillow's
// full resize; computing only the window saves the columns and rows a
// center crop throws away.
func resizeWindow(src rgbImage, outW, outH int, r Resample, x0, y0, x1, y1 int, dst []uint8, sc *resizeScratch) {
	ww, wh := x1-x0, y1-y0
	if r == ResampleNearest {
		resizeNearest(src, outW, outH, x0, y0, x1, y1, dst)
		return
	}
	f := filters[r]
	needH := outW != src.W
	needV := outH != src.H

	// Rows of src that the window's vertical taps read.
	var vc axisCoeffs
	rowFirst, rowLast := y0, y1
	if needV {
		vc = makeCoeffs(src.H, outH, y0, y1, f)
		rowFirst = vc.start[0]
		rowLast = vc.start[wh-1] + vc.n[wh-1]
		for i := 1; i < wh; i++ { // starts are monotone, but take no chances
			rowFirst = min(rowFirst, vc.start[i])
			rowLast = max(rowLast, vc.start[i]+vc.n[i])
		}
	}
	stride := 3 * ww

	// Horizontal pass: rows [rowFirst,rowLast) of src → tmp, window columns.
	var tmp []uint8
	if needH {
		hc := makeCoeffs(src.W, outW, x0, x1, f)
		tmp = grow(sc.tmp, stride*(rowLast-rowFirst))
		sc.tmp = tmp
		for y := rowFirst; y < rowLast; y++ {
			in := src.Pix[y*3*src.W : (y+1)*3*src.W]
			out := tmp[(y-rowFirst)*stride : (y-rowFirst+1)*stride]
			for i := range ww {
				k := hc.k[i*hc.ksize : i*hc.ksize+hc.n[i]]
				p := in[3*hc.start[i] : 3*(hc.start[i]+len(k))]
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for t, w := range k {
					s0 += int32(p[3*t]) * w
					s1 += int32(p[3*t+1]) * w
					s2 += int32(p[3*t+2]) * w
				}
				out[3*i], out[3*i+1], out[3*i+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
	} else {
		// Width unchanged: the window's columns of the source rows.
		tmp = grow(sc.tmp, stride*(rowLast-rowFirst))
		sc.tmp = tmp
		for y := rowFirst; y < rowLast; y++ {
			copy(tmp[(y-rowFirst)*stride:(y-rowFirst+1)*stride], src.Pix[y*3*src.W+3*x0:y*3*src.W+3*x1])
		}
	}

	if !needV {
		copy(dst[:stride*wh], tmp[:stride*wh])
		return
	}
	// Vertical pass, one output row at a time, accumulating whole rows.
	acc := grow(sc.acc, stride)
	sc.acc = acc
	for i := range wh {
		for j := range acc {
			acc[j] = 1 << (precisionBits - 1)
		}
		k := vc.k[i*vc.ksize : i*vc.ksize+vc.n[i]]
		for t, w := range k {
			row := tmp[(vc.start[i]+t-rowFirst)*stride : (vc.start[i]+t-rowFirst+1)*stride]
			for j, v := range row {
				acc[j] += int32(v) * w
			}
		}
		out := dst[i*stride : (i+1)*stride]
		for j, v := range acc {
			out[j] = clip8(v)
		}
	}
}

// resizeNearest is Pillow's NEAREST resize, which is not a convolution but
// an affine transform (Geometry.c, ImagingScaleAffine): the source
// coordinate starts at half a step and is advanced by adding the step, then
// floored. The running sum is kept as Pillow keeps it so that the rare
// index where accumulated rounding crosses an integer matches too.
func resizeNearest(src rgbImage, outW, outH int, x0, y0, x1, y1 int, dst []uint8) {
	xs := nearestIndex(src.W, outW, x0, x1)
	ys := nearestIndex(src.H, outH, y0, y1)
	o := 0
	for _, sy := range ys {
		row := src.Pix[sy*3*src.W:]
		for _, sx := range xs {
			dst[o], dst[o+1], dst[o+2] = row[3*sx], row[3*sx+1], row[3*sx+2]
			o += 3
		}
	}
}

func nearestIndex(inSize, outSize, from, to int) []int {
	step := float64(inSize) / float64(outSize)
	idx := make([]int, 0, to-from)
	pos := step * 0.5
	for i := 0; i < to; i++ {
		if i >= from {
			v := 0
			if pos >= 0 {
				v = int(pos)
			}
			idx = append(idx, min(v, inSize-1))
		}
		pos += step
	}
	return idx
}
