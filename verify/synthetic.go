package verify

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Synthetic writes deterministic synthetic input number index for seed into
// dst (3·H·W values, the fixed output size). It draws an 8-bit RGB picture
// with image-like statistics (a two-colour gradient, a few soft-edged
// ellipses and rectangles, low-frequency shading and a little pixel noise:
// smooth regions, edges, every channel varying) and passes it through the
// same rescale, normalize and channel flip as real images, so the model
// sees the value range it was trained on. Never all zeros; the same for a
// given (seed, index) on every machine, batch size and thread count.
//
// Latency measured on synthetic inputs is representative; accuracy
// metrics on them are only agreement between two models on unnatural
// pictures, and results must say so.
func (p *Preprocessor) Synthetic(seed uint64, index int, dst []float32) error {
	h, w, ok := p.FixedSize()
	if !ok {
		return fmt.Errorf("%w: synthetic inputs need a fixed output size", ErrShape)
	}
	plane := h * w
	if len(dst) != 3*plane {
		return fmt.Errorf("%w: dst has %d values, output is 3×%d×%d", ErrShape, len(dst), h, w)
	}
	sc := p.pool.Get().(*preprocessScratch)
	defer p.pool.Put(sc)
	pix := grow(sc.window, 3*plane)
	sc.window = pix
	drawSynthetic(rand.New(rand.NewPCG(seed, uint64(index))), w, h, pix)
	chans := [3]int{0, 1, 2}
	if p.cfg.DoFlipChannelOrder {
		chans = [3]int{2, 1, 0}
	}
	for k, s := range chans {
		lut := &p.lut[s]
		out := dst[k*plane : (k+1)*plane]
		for i := range out {
			out[i] = lut[pix[3*i+s]]
		}
	}
	return nil
}

func drawSynthetic(r *rand.Rand, w, h int, pix []uint8) {
	col := func() [3]float64 { return [3]float64{r.Float64() * 255, r.Float64() * 255, r.Float64() * 255} }
	c0, c1 := col(), col()
	ang := r.Float64() * 2 * math.Pi
	dx, dy := math.Cos(ang), math.Sin(ang)
	type shape struct {
		cx, cy, rx, ry float64
		c              [3]float64
		rect           bool
	}
	shapes := make([]shape, 3+r.IntN(4))
	for i := range shapes {
		shapes[i] = shape{
			cx: r.Float64() * float64(w), cy: r.Float64() * float64(h),
			rx: (0.08 + 0.3*r.Float64()) * float64(w), ry: (0.08 + 0.3*r.Float64()) * float64(h),
			c: col(), rect: r.IntN(2) == 0,
		}
	}
	// Low-frequency shading: two plane waves of 1–3 cycles across the image.
	fx1, fy1 := (1+2*r.Float64())*2*math.Pi/float64(w), (1+2*r.Float64())*2*math.Pi/float64(h)
	fx2, fy2 := (1+2*r.Float64())*2*math.Pi/float64(w), (1+2*r.Float64())*2*math.Pi/float64(h)
	ph1, ph2 := r.Float64()*2*math.Pi, r.Float64()*2*math.Pi
	norm := math.Abs(dx)*float64(w) + math.Abs(dy)*float64(h)
	for y := range h {
		for x := range w {
			fxp, fyp := float64(x)+0.5, float64(y)+0.5
			t := ((fxp-float64(w)/2)*dx+(fyp-float64(h)/2)*dy)/norm + 0.5
			var v [3]float64
			for c := range 3 {
				v[c] = c0[c]*(1-t) + c1[c]*t
			}
			for _, s := range shapes {
				ux, uy := (fxp-s.cx)/s.rx, (fyp-s.cy)/s.ry
				var d float64 // >0 inside; soft edge over ~1.5 px
				if s.rect {
					d = 1 - math.Max(math.Abs(ux), math.Abs(uy))
				} else {
					d = 1 - math.Sqrt(ux*ux+uy*uy)
				}
				a := math.Min(1, math.Max(0, d*math.Min(s.rx, s.ry)/1.5))
				for c := range 3 {
					v[c] = v[c]*(1-a) + s.c[c]*a
				}
			}
			shade := 18*math.Sin(fx1*fxp+fy1*fyp+ph1) + 12*math.Sin(fx2*fxp+fy2*fyp+ph2)
			o := 3 * (y*w + x)
			for c := range 3 {
				n := v[c] + shade + float64(r.IntN(13)-6)
				pix[o+c] = uint8(math.Min(255, math.Max(0, math.Round(n))))
			}
		}
	}
}
