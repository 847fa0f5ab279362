package verify

import (
	"fmt"
	"image"
	"sync"
)

// Preprocessor turns images into a model's pixel_values as the Hugging Face
// image processor named in its config does (the "slow", Pillow-based
// processors): RGB conversion as Pillow's convert("RGB"), Pillow-exact
// resampling, center crop with zero padding, rescale in float64 then
// float32, normalize in float32, optional RGB→BGR flip, NCHW float32 out.
//
// Known differences from transformers, each measured by the tests:
//   - JPEG decoding is Go's image/jpeg, not libjpeg-turbo; their IDCT and
//     colour conversion round differently, by a few levels of 255 in places
//     (TestPipelineMatchesPillow reports the figure for rocket.jpg).
//   - transformers' "Fast" processors (torchvision resize) are reproduced as
//     their slow twins; the two differ slightly in transformers itself.
//   - 16-bit grayscale keeps its high byte (Pillow clips it; see toRGB).
//
// A Preprocessor is safe for concurrent use.
type Preprocessor struct {
	cfg PreprocessorConfig
	// lut maps an 8-bit sample of source channel c to its final value
	// (rescale then normalize): exact, because every step after the crop is
	// a per-channel function of one uint8.
	lut  [3][256]float32
	pool sync.Pool
}

type preprocessScratch struct {
	rgb    []uint8
	window []uint8
	resize resizeScratch
}

// NewPreprocessor checks cfg and prepares it for Apply.
func NewPreprocessor(cfg PreprocessorConfig) (*Preprocessor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Preprocessor{cfg: cfg}
	for c := range 3 {
		mean, std := float32(cfg.ImageMean[c]), float32(cfg.ImageStd[c])
		for u := range 256 {
			v := float32(u)
			if cfg.DoRescale {
				// transformers: image.astype(np.float64) * scale, then float32.
				v = float32(float64(u) * cfg.RescaleFactor)
			}
			if cfg.DoNormalize {
				// transformers: (image - mean) / std with float32 arrays.
				v = float32(v-mean) / std
			}
			p.lut[c][u] = v
		}
	}
	p.pool.New = func() any { return new(preprocessScratch) }
	return p, nil
}

// LoadPreprocessor reads a model directory's preprocessor_config.json, or
// uses DefaultPreprocessorConfig when the file is missing (see
// LoadPreprocessorConfig).
func LoadPreprocessor(dir string) (*Preprocessor, error) {
	cfg, err := LoadPreprocessorConfig(dir)
	if err != nil {
		return nil, err
	}
	return NewPreprocessor(cfg)
}

// Config returns the settings in use.
func (p *Preprocessor) Config() PreprocessorConfig { return p.cfg }

// resizedSize is the size after the resize step (transformers'
// get_resize_output_image_size: a shortest_edge keeps the aspect ratio and
// truncates the long side, int(s * long / short)).
func (p *Preprocessor) resizedSize(w, h int) (int, int) {
	c := &p.cfg
	if !c.DoResize {
		return w, h
	}
	if s := c.Size.ShortestEdge; s > 0 {
		short, long := h, w
		if w <= h {
			short, long = w, h
		}
		newLong := int(float64(s) * float64(long) / float64(short))
		if w <= h {
			return s, newLong
		}
		return newLong, s
	}
	return c.Size.Width, c.Size.Height
}

// OutputSize is the height and width of the pixel_values that Apply makes
// from a w×h image.
func (p *Preprocessor) OutputSize(w, h int) (oh, ow int) {
	if p.cfg.DoCenterCrop {
		return p.cfg.CropSize.Height, p.cfg.CropSize.Width
	}
	rw, rh := p.resizedSize(w, h)
	return rh, rw
}

// FixedSize reports the output height and width when they do not depend on
// the image (a center crop, or a height×width resize), as batching needs.
func (p *Preprocessor) FixedSize() (h, w int, ok bool) {
	c := &p.cfg
	switch {
	case c.DoCenterCrop:
		return c.CropSize.Height, c.CropSize.Width, true
	case c.DoResize && c.Size.ShortestEdge == 0:
		return c.Size.Height, c.Size.Width, true
	}
	return 0, 0, false
}

// SampleLen is 3·H·W for a fixed-size preprocessor, else 0.
func (p *Preprocessor) SampleLen() int {
	h, w, ok := p.FixedSize()
	if !ok {
		return 0
	}
	return 3 * h * w
}

// Apply preprocesses img into dst, which must hold exactly 3·H·W float32
// for the (H, W) that OutputSize gives, laid out channel-major (CHW; one
// sample of an NCHW batch).
func (p *Preprocessor) Apply(img image.Image, dst []float32) error {
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return fmt.Errorf("%w: empty image %v", ErrShape, b)
	}
	sc := p.pool.Get().(*preprocessScratch)
	defer p.pool.Put(sc)
	src := toRGB(img, sc.rgb)
	sc.rgb = src.Pix
	return p.applyRGB(src, dst, sc)
}

// ApplyFile decodes path and preprocesses it into dst.
func (p *Preprocessor) ApplyFile(path string, dst []float32) error {
	img, err := DecodeImage(path)
	if err != nil {
		return err
	}
	return p.Apply(img, dst)
}

func (p *Preprocessor) applyRGB(src rgbImage, dst []float32, sc *preprocessScratch) error {
	c := &p.cfg
	rw, rh := p.resizedSize(src.W, src.H)
	oh, ow := rh, rw
	top, left := 0, 0
	if c.DoCenterCrop {
		oh, ow = c.CropSize.Height, c.CropSize.Width
		// transformers' center_crop: (orig - crop) // 2, floor division; a
		// negative offset means zero padding on that side.
		top, left = (rh-oh)>>1, (rw-ow)>>1
	}
	plane := oh * ow
	if len(dst) != 3*plane {
		return fmt.Errorf("%w: dst has %d values, output is 3×%d×%d", ErrShape, len(dst), oh, ow)
	}
	// The part of the output window that lies on the resized image.
	y0, y1 := max(top, 0), min(top+oh, rh)
	x0, x1 := max(left, 0), min(left+ow, rw)

	// Channel order of the output: flip maps output channel k to source 2-k.
	chans := [3]int{0, 1, 2}
	if c.DoFlipChannelOrder {
		chans = [3]int{2, 1, 0}
	}
	if y0 >= y1 || x0 >= x1 { // the crop misses the image entirely
		for k, sc := range chans {
			fillPlane(dst[k*plane:(k+1)*plane], p.lut[sc][0])
		}
		return nil
	}
	wh, ww := y1-y0, x1-x0
	win := grow(sc.window, 3*wh*ww)
	sc.window = win
	if c.DoResize {
		resizeWindow(src, rw, rh, c.Resample, x0, y0, x1, y1, win, &sc.resize)
	} else {
		for y := y0; y < y1; y++ {
			copy(win[(y-y0)*3*ww:(y-y0+1)*3*ww], src.Pix[(y*src.W+x0)*3:(y*src.W+x1)*3])
		}
	}
	// Output row i, column j shows resized pixel (top+i, left+j), or the
	// padding value 0 (before rescale/normalize, as transformers pads).
	for k, s := range chans {
		lut := &p.lut[s]
		out := dst[k*plane : (k+1)*plane]
		pad := lut[0]
		for i := range oh {
			row := out[i*ow : (i+1)*ow]
			y := top + i
			if y < y0 || y >= y1 {
				fillPlane(row, pad)
				continue
			}
			in := win[(y-y0)*3*ww:]
			for j := range ow {
				x := left + j
				if x < x0 || x >= x1 {
					row[j] = pad
					continue
				}
				row[j] = lut[in[3*(x-x0)+s]]
			}
		}
	}
	return nil
}

func fillPlane(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}
