package verify

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registered decoders: formats an ImageFolder may hold
	_ "image/jpeg"
	_ "image/png"
	"io"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/quantpack/quantpack/internal/safeio"
)

// MaxImagePixels caps width×height as an image header declares it, checked
// before the decoder allocates the pixels (a 60-byte PNG can declare 4
// billion). 2^26 is 8192×8192, four times a 24-megapixel photo and far above
// any classifier's input; Pillow warns at about 89 M pixels for the same
// reason.
const MaxImagePixels = 1 << 26

// maxImageFileBytes caps the file read into memory; a compressed image
// within MaxImagePixels is far smaller.
const maxImageFileBytes = 256 << 20

// DecodeImage reads and decodes an image file: PNG, JPEG, GIF (first
// frame), BMP, TIFF or WebP. Failures are *ImageError values naming the
// file, wrapping ErrCorruptImage, ErrUnsupportedImage or ErrImageTooLarge.
//
// Like Pillow's Image.open, it ignores EXIF orientation (transformers'
// processors do not rotate either; only its load_image helper does).
func DecodeImage(path string) (image.Image, error) {
	f, err := safeio.Open(path) // a FIFO named x.png must not block
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxImageFileBytes {
		return nil, &ImageError{Path: path, Offset: -1, Size: fi.Size(), Kind: ErrImageTooLarge,
			Err: fmt.Errorf("file is %d bytes, limit %d", fi.Size(), maxImageFileBytes)}
	}
	// The size comes from the file system, not from the file's contents;
	// LimitReader still guards against a file that grows while we read.
	data, err := io.ReadAll(io.LimitReader(f, maxImageFileBytes+1))
	if err != nil {
		return nil, err
	}
	return DecodeImageBytes(path, data)
}

// DecodeImageBytes decodes an image held in memory; name is used in errors.
func DecodeImageBytes(name string, data []byte) (img image.Image, err error) {
	size := int64(len(data))
	if size > maxImageFileBytes {
		return nil, &ImageError{Path: name, Offset: -1, Size: size, Kind: ErrImageTooLarge,
			Err: fmt.Errorf("%d bytes, limit %d", size, maxImageFileBytes)}
	}
	format := ""
	r := bytes.NewReader(data)
	// A decoder bug must not take the whole evaluation down with it: turn a
	// panic into an error on this one file.
	defer func() {
		if p := recover(); p != nil {
			img = nil
			err = &ImageError{Path: name, Format: format, Offset: size - int64(r.Len()), Size: size,
				Kind: ErrCorruptImage, Err: fmt.Errorf("decoder panic: %v", p)}
		}
	}()
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		kind := ErrCorruptImage
		if errors.Is(err, image.ErrFormat) {
			kind = ErrUnsupportedImage
		}
		return nil, &ImageError{Path: name, Format: format, Offset: size - int64(r.Len()), Size: size, Kind: kind, Err: err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, &ImageError{Path: name, Format: format, Offset: -1, Size: size, Kind: ErrCorruptImage,
			Err: fmt.Errorf("header declares %d×%d pixels", cfg.Width, cfg.Height)}
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, &ImageError{Path: name, Format: format, Offset: -1, Size: size, Kind: ErrImageTooLarge,
			Err: fmt.Errorf("header declares %d×%d pixels, limit %d", cfg.Width, cfg.Height, MaxImagePixels)}
	}
	r.Reset(data)
	img, _, err = image.Decode(r)
	if err != nil {
		return nil, &ImageError{Path: name, Format: format, Offset: size - int64(r.Len()), Size: size, Kind: ErrCorruptImage, Err: err}
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, &ImageError{Path: name, Format: format, Offset: -1, Size: size, Kind: ErrCorruptImage,
			Err: fmt.Errorf("decoded %d×%d, header said %d×%d", b.Dx(), b.Dy(), cfg.Width, cfg.Height)}
	}
	return img, nil
}

// toRGB converts img to 8-bit RGB the way Pillow's convert("RGB") does,
// which is what transformers' convert_to_rgb calls:
//   - alpha is dropped, not composited (an RGBA pixel keeps its colour);
//   - grayscale is replicated; a palette is looked up;
//   - CMYK uses Pillow's cmyk2rgb integer formula;
//   - 16-bit samples keep their high byte, as Pillow does for 16-bit RGB.
//
// One deliberate difference: Pillow opens 16-bit grayscale as mode "I" and
// its I→RGB conversion clips at 255, turning almost every pixel white; we
// keep the high byte instead, which is the image the file holds.
//
// pix is reused when large enough.
func toRGB(img image.Image, pix []uint8) rgbImage {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := rgbImage{W: w, H: h, Pix: grow(pix, 3*w*h)}
	p := out.Pix
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, p)
	case *image.NYCbCrA:
		ycbcrToRGB(&m.YCbCr, p)
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[(y)*m.Stride : (y)*m.Stride+4*w]
			o := p[3*w*y : 3*w*(y+1)]
			for x := range w {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := p[3*w*y : 3*w*(y+1)]
			for x := range w {
				r, g, bl, a := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				if a != 255 { // premultiplied: undo it as Pillow never premultiplied
					c := color.NRGBAModel.Convert(color.RGBA{r, g, bl, a}).(color.NRGBA)
					r, g, bl = c.R, c.G, c.B
				}
				o[3*x], o[3*x+1], o[3*x+2] = r, g, bl
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := p[3*w*y : 3*w*(y+1)]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			o := p[3*w*y : 3*w*(y+1)]
			for x := range w {
				v := row[2*x] // big-endian: the high byte
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range m.Palette {
			if i == 256 {
				break
			}
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]uint8{n.R, n.G, n.B}
		}
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := p[3*w*y : 3*w*(y+1)]
			for x, v := range row {
				c := lut[v]
				o[3*x], o[3*x+1], o[3*x+2] = c[0], c[1], c[2]
			}
		}
	case *image.CMYK:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := p[3*w*y : 3*w*(y+1)]
			for x := range w {
				o[3*x], o[3*x+1], o[3*x+2] = cmykToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
			}
		}
	default:
		// NRGBA64, RGBA64 and anything else: through the colour model, which
		// un-premultiplies; then the high byte of each 16-bit sample.
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				p[i], p[i+1], p[i+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
				i += 3
			}
		}
	}
	return out
}

// cmykToRGB is Pillow's cmyk2rgb (Convert.c): nk = 255-k, channel =
// nk - c·nk/255 with Pillow's rounding MULDIV255.
func cmykToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		r := nk - (((t >> 8) + t) >> 8)
		if r < 0 {
			return 0
		}
		return uint8(r)
	}
	return f(c), f(m), f(y)
}

// ycbcrToRGB converts a decoded JPEG's planes, looking the chroma sample
// up as YCbCr.COffset does but without a call per pixel.
func ycbcrToRGB(m *image.YCbCr, p []uint8) {
	b := m.Rect
	hs := -1 // horizontal chroma subsampling shift
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio440:
		hs = 0
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		hs = 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		hs = 2
	}
	i := 0
	if hs < 0 || b.Min.X < 0 || b.Min.Y < 0 { // COffset divides; shifts agree only from 0 up
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				ci := m.COffset(x, y)
				p[i], p[i+1], p[i+2] = ycc(m.Y[m.YOffset(x, y)], m.Cb[ci], m.Cr[ci])
				i += 3
			}
		}
		return
	}
	w := b.Dx()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		yrow := m.Y[m.YOffset(b.Min.X, y):][:w]
		c0 := m.COffset(b.Min.X, y) // chroma of the row's first pixel
		cb, cr := m.Cb[c0:], m.Cr[c0:]
		for x, yv := range yrow {
			c := (b.Min.X+x)>>hs - b.Min.X>>hs
			p[i], p[i+1], p[i+2] = ycc(yv, cb[c], cr[c])
			i += 3
		}
	}
}

// ycc is image/color.YCbCrToRGB (JFIF full-range BT.601, 16.16 fixed
// point), copied so that it inlines into the loop above;
// TestYCCMatchesColorPackage checks all 2^24 inputs against the original.
func ycc(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy1 := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy1 + 91881*cr1
	if uint32(r)&0xff000000 == 0 {
		r >>= 16
	} else {
		r = ^(r >> 31)
	}
	g := yy1 - 22554*cb1 - 46802*cr1
	if uint32(g)&0xff000000 == 0 {
		g >>= 16
	} else {
		g = ^(g >> 31)
	}
	bl := yy1 + 116130*cb1
	if uint32(bl)&0xff000000 == 0 {
		bl >>= 16
	} else {
		bl = ^(bl >> 31)
	}
	return uint8(r), uint8(g), uint8(bl)
}
