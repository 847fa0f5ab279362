package verify

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestSyntheticDeterministicAndImageLike(t *testing.T) {
	p, err := NewPreprocessor(PreprocessorConfig{Class: "ViTImageProcessor", DoResize: true, Size: Size{Height: 64, Width: 48},
		Resample: ResampleBilinear, DoRescale: true, RescaleFactor: 1.0 / 255})
	if err != nil {
		t.Fatal(err)
	}
	n := p.SampleLen()
	a, b, c := make([]float32, n), make([]float32, n), make([]float32, n)
	p.Synthetic(7, 3, a)
	p.Synthetic(7, 3, b)
	p.Synthetic(7, 4, c)
	if !slices.Equal(a, b) {
		t.Error("same seed and index differ")
	}
	if slices.Equal(a, c) {
		t.Error("different indices give the same input")
	}
	// Statistics over 20 samples, in [0,1] pixel units (rescale only):
	// image-like means mid-range values, real spread, strong correlation
	// between horizontal neighbours (white noise would give ~0), and few
	// clipped-black pixels (measured 1.1%; real photos have some too).
	var sum, sq, corrNum, corrDen float64
	zeros := 0
	for i := range 20 {
		p.Synthetic(1, i, a)
		for ch := range 3 {
			plane := a[ch*64*48 : (ch+1)*64*48]
			var m float64
			for _, v := range plane {
				m += float64(v)
			}
			m /= float64(len(plane))
			for y := range 64 {
				for x := range 47 {
					u, v := float64(plane[y*48+x])-m, float64(plane[y*48+x+1])-m
					corrNum += u * v
					corrDen += u * u
				}
			}
		}
		for _, v := range a {
			sum += float64(v)
			sq += float64(v) * float64(v)
			if v == 0 {
				zeros++
			}
		}
	}
	cnt := float64(20 * n)
	mean := sum / cnt
	std := math.Sqrt(sq/cnt - mean*mean)
	corr := corrNum / corrDen
	t.Logf("synthetic: mean %.3f, std %.3f, neighbour correlation %.3f, zeros %d of %.0f", mean, std, corr, zeros, cnt)
	if mean < 0.25 || mean > 0.75 || std < 0.12 || corr < 0.8 || zeros > int(cnt*3/100) {
		t.Errorf("not image-like: mean %.3f std %.3f corr %.3f zeros %d", mean, std, corr, zeros)
	}
}

// TestSyntheticLoaderIndependentOfBatching: sample i is the same whether
// it arrives in batches of 1 or 5.
func TestSyntheticLoaderIndependentOfBatching(t *testing.T) {
	p, _ := NewPreprocessor(PreprocessorConfig{Class: "MobileViTImageProcessor", DoResize: true, Size: Size{ShortestEdge: 20},
		Resample: ResampleBilinear, DoCenterCrop: true, CropSize: Size{Height: 16, Width: 16}, DoRescale: true,
		RescaleFactor: 1.0 / 255, DoFlipChannelOrder: true})
	collect := func(batch int) []float32 {
		l, err := NewSyntheticLoader(p, 7, 42)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Synthetic() {
			t.Fatal("not marked synthetic")
		}
		var all []float32
		buf := make([]float32, batch*l.SampleLen())
		for {
			s, err := l.Next(context.Background(), batch, buf)
			if err != nil {
				break
			}
			all = append(all, buf[:len(s)*l.SampleLen()]...)
		}
		return all
	}
	one, five := collect(1), collect(5)
	if len(one) != 7*3*16*16 || !slices.Equal(one, five) {
		t.Errorf("batch 1 and 5 differ (%d, %d values)", len(one), len(five))
	}
	// Flip: the synthetic picture goes through the same BGR flip, so plane 0
	// holds source channel 2.
	n := p.SampleLen()
	x := make([]float32, n)
	p.Synthetic(42, 0, x)
	if !slices.Equal(x, one[:n]) {
		t.Error("loader sample 0 differs from Synthetic(seed, 0)")
	}
}
