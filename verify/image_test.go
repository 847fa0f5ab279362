package verify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

func TestDecodeFixtureImages(t *testing.T) {
	dir := fixtureDir(t, "images")
	for name, wh := range map[string][2]int{
		"chelsea.png": {451, 300}, "coffee.png": {600, 400}, "astronaut.png": {512, 512}, "rocket.jpg": {640, 427},
		"horse.png": {400, 328}, "camera.png": {512, 512}, "palette_color.png": {10, 10},
	} {
		img, err := DecodeImage(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != wh[0] || b.Dy() != wh[1] {
			t.Errorf("%s: %v, want %dx%d", name, b, wh[0], wh[1])
		}
	}
}

// TestDecodeTruncatedJPEG: the fixture must give an error that names the
// file, is classed as invalid input, and says how far decoding got.
func TestDecodeTruncatedJPEG(t *testing.T) {
	path := filepath.Join(fixtureDir(t, "images"), "truncated.jpg")
	_, err := DecodeImage(path)
	var ie *ImageError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want *ImageError", err)
	}
	if !errors.Is(err, ErrCorruptImage) || fault.ClassOf(err) != fault.Invalid {
		t.Errorf("err = %v (class %v), want ErrCorruptImage / invalid", err, fault.ClassOf(err))
	}
	fi, _ := os.Stat(path)
	if ie.Path != path || ie.Format != "jpeg" || ie.Size != fi.Size() || ie.Offset < 0 || ie.Offset > ie.Size {
		t.Errorf("error fields %+v", ie)
	}
	t.Log(err)
}

func TestDecodeImageBytesErrors(t *testing.T) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 3)))
	good := buf.Bytes()

	// A PNG whose IHDR declares 100000×100000 pixels (CRC fixed up, so only
	// the size is wrong): refused before decoding allocates 10^10 bytes.
	huge := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))

	cases := []struct {
		name string
		data []byte
		kind error
	}{
		{"empty", nil, ErrUnsupportedImage},
		{"text", []byte("hello, world, not an image"), ErrUnsupportedImage},
		{"truncated png", good[:len(good)-20], ErrCorruptImage},
		{"png header only", good[:33], ErrCorruptImage},
		{"huge header", huge, ErrImageTooLarge},
	}
	for _, tc := range cases {
		_, err := DecodeImageBytes("x.img", tc.data)
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.kind)
		}
		var ie *ImageError
		if !errors.As(err, &ie) || ie.Path != "x.img" {
			t.Errorf("%s: %v does not name the file", tc.name, err)
		}
	}
	if _, err := DecodeImageBytes("ok.png", good); err != nil {
		t.Errorf("valid PNG: %v", err)
	}
	if _, err := DecodeImage(filepath.Join(t.TempDir(), "missing.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestToRGBColorModels checks each conversion against values worked out by
// hand or produced by Pillow 9.4 (CMYK: Image.new("CMYK", ...).convert("RGB")).
func TestToRGBColorModels(t *testing.T) {
	one := func(img image.Image) [3]uint8 {
		p := toRGB(img, nil).Pix
		return [3]uint8{p[0], p[1], p[2]}
	}
	r1 := image.Rect(0, 0, 1, 1)

	nrgba := image.NewNRGBA(r1)
	nrgba.Pix = []uint8{10, 20, 30, 0} // fully transparent: Pillow keeps the colour
	if got := one(nrgba); got != [3]uint8{10, 20, 30} {
		t.Errorf("NRGBA: %v", got)
	}
	rgba := image.NewRGBA(r1)
	rgba.Pix = []uint8{100, 50, 0, 128} // premultiplied: straight is 100·255/128 ≈ 199
	if got := one(rgba); got != [3]uint8{199, 99, 0} {
		t.Errorf("RGBA premultiplied: %v", got)
	}
	gray := image.NewGray(r1)
	gray.Pix[0] = 77
	if got := one(gray); got != [3]uint8{77, 77, 77} {
		t.Errorf("Gray: %v", got)
	}
	g16 := image.NewGray16(r1)
	g16.SetGray16(0, 0, color.Gray16{Y: 0xAB12})
	if got := one(g16); got != [3]uint8{0xAB, 0xAB, 0xAB} {
		t.Errorf("Gray16: %v", got)
	}
	pal := image.NewPaletted(r1, color.Palette{color.RGBA{1, 2, 3, 255}, color.NRGBA{200, 100, 50, 7}})
	pal.Pix[0] = 1
	if got := one(pal); got != [3]uint8{200, 100, 50} {
		t.Errorf("Paletted: %v", got)
	}
	n64 := image.NewNRGBA64(r1)
	n64.SetNRGBA64(0, 0, color.NRGBA64{R: 0x1234, G: 0xFF00, B: 0x00FF, A: 0x10})
	if got := one(n64); got != [3]uint8{0x12, 0xFF, 0x00} {
		t.Errorf("NRGBA64: %v", got)
	}
	for _, tc := range []struct{ cmyk, want [4]uint8 }{
		{[4]uint8{128, 0, 0, 64}, [4]uint8{95, 191, 191}},
		{[4]uint8{10, 200, 255, 0}, [4]uint8{245, 55, 0}},
		{[4]uint8{255, 255, 255, 255}, [4]uint8{0, 0, 0}},
		{[4]uint8{0, 0, 0, 0}, [4]uint8{255, 255, 255}},
		{[4]uint8{77, 150, 3, 200}, [4]uint8{38, 23, 54}},
	} {
		c := image.NewCMYK(r1)
		copy(c.Pix, tc.cmyk[:])
		if got := one(c); got != [3]uint8{tc.want[0], tc.want[1], tc.want[2]} {
			t.Errorf("CMYK %v: %v, Pillow gives %v", tc.cmyk, got, tc.want[:3])
		}
	}
}

// TestToRGBYCbCrSubsampled: a 4:2:0 JPEG decodes to *image.YCbCr whose
// chroma planes are smaller than luma; the fast path must index them as
// At does (Go's own conversion is the reference, within the one level by
// which color.YCbCr.RGBA and YCbCrToRGB may differ).
func TestToRGBYCbCrSubsampled(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 37, 23))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7 % 251)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	img, err := DecodeImageBytes("s.jpg", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	y, ok := img.(*image.YCbCr)
	if !ok || y.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		t.Fatalf("decoded %T, want 4:2:0 YCbCr", img)
	}
	got := toRGB(img, nil)
	for yy := 0; yy < 23; yy++ {
		for xx := 0; xx < 37; xx++ {
			r, g, b, _ := img.At(xx, yy).RGBA()
			o := 3 * (yy*37 + xx)
			for c, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				if d := int(got.Pix[o+c]) - int(v); d < -1 || d > 1 {
					t.Fatalf("(%d,%d) channel %d: %d, At gives %d", xx, yy, c, got.Pix[o+c], v)
				}
			}
		}
	}
}

func TestToRGBOffsetBounds(t *testing.T) {
	// A sub-image does not start at (0,0); the generic path must honour Min.
	base := image.NewRGBA64(image.Rect(0, 0, 4, 4))
	for y := range 4 {
		for x := range 4 {
			base.SetRGBA64(x, y, color.RGBA64{uint16(x) << 12, uint16(y) << 12, 0xFFFF, 0xFFFF})
		}
	}
	sub := base.SubImage(image.Rect(1, 2, 3, 4))
	got := toRGB(sub, nil)
	if got.W != 2 || got.H != 2 || got.Pix[0] != 0x10 || got.Pix[1] != 0x20 || got.Pix[3] != 0x20 {
		t.Errorf("sub-image: %+v", got)
	}
}

func TestYCCMatchesColorPackage(t *testing.T) {
	for y := range 256 {
		for cb := range 256 {
			for cr := range 256 {
				r1, g1, b1 := ycc(uint8(y), uint8(cb), uint8(cr))
				r2, g2, b2 := color.YCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				if r1 != r2 || g1 != g2 || b1 != b2 {
					t.Fatalf("ycc(%d,%d,%d) = %d,%d,%d; image/color gives %d,%d,%d", y, cb, cr, r1, g1, b1, r2, g2, b2)
				}
			}
		}
	}
}

// TestToRGBYCbCrAllRatios: every subsampling ratio and an odd origin give
// exactly what color.YCbCrToRGB gives at the sample COffset names.
func TestToRGBYCbCrAllRatios(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		full := image.NewYCbCr(image.Rect(0, 0, 13, 9), ratio)
		for i := range full.Y {
			full.Y[i] = uint8(i * 31)
		}
		for i := range full.Cb {
			full.Cb[i], full.Cr[i] = uint8(i*17+3), uint8(i*53+100)
		}
		for _, r := range []image.Rectangle{full.Rect, image.Rect(3, 1, 12, 8)} {
			m := full.SubImage(r).(*image.YCbCr)
			got := toRGB(m, nil)
			i := 0
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					ci := m.COffset(x, y)
					wr, wg, wb := color.YCbCrToRGB(m.Y[m.YOffset(x, y)], m.Cb[ci], m.Cr[ci])
					if got.Pix[i] != wr || got.Pix[i+1] != wg || got.Pix[i+2] != wb {
						t.Fatalf("%v %v (%d,%d): got %v, want %d %d %d", ratio, r, x, y, got.Pix[i:i+3], wr, wg, wb)
					}
					i += 3
				}
			}
		}
	}
}
