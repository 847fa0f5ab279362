package verify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// TestPipelineMatchesPillow runs six processor configs over the fixture
// images and compares with testdata/pil/config/*/<image>.f32, which
// gen_pil_golden.py made with Pillow plus a numpy replay of transformers'
// steps. PNGs decode losslessly, so they must match exactly: every value
// comes from the same uint8 through the same float32 operations.
// rocket.jpg goes through two different JPEG decoders (Go's and
// libjpeg-turbo 2.1) whose rounding differs; the bound below is the
// measured difference (max 2, mean 0.27 levels) with margin, in units of one 8-bit level after
// normalization, and the measured figure is logged.
func TestPipelineMatchesPillow(t *testing.T) {
	imgDir := fixtureDir(t, "images")
	configs, err := filepath.Glob(filepath.Join("testdata", "pil", "config", "*"))
	if err != nil || len(configs) == 0 {
		t.Fatalf("no golden configs: %v", err)
	}
	images := []string{"chelsea.png", "coffee.png", "astronaut.png", "horse.png", "camera.png", "palette_color.png", "rocket.jpg"}
	for _, cdir := range configs {
		p, err := LoadPreprocessor(cdir)
		if err != nil {
			t.Fatalf("%s: %v", cdir, err)
		}
		// One 8-bit level in output units, per channel, for the JPEG bound.
		level := make([]float64, 3)
		for c := range 3 {
			level[c] = math.Abs(float64(p.lut[c][1] - p.lut[c][0]))
		}
		for _, name := range images {
			t.Run(filepath.Base(cdir)+"/"+name, func(t *testing.T) {
				stem := strings.TrimSuffix(name, filepath.Ext(name))
				want := readF32(t, filepath.Join(cdir, stem+".f32"))
				img, err := DecodeImage(filepath.Join(imgDir, name))
				if err != nil {
					t.Fatal(err)
				}
				oh, ow := p.OutputSize(img.Bounds().Dx(), img.Bounds().Dy())
				shape, _ := os.ReadFile(filepath.Join(cdir, stem+".shape"))
				if got := fmt.Sprintf("3 %d %d\n", oh, ow); got != string(shape) {
					t.Fatalf("output shape %q, golden %q", got, shape)
				}
				got := make([]float32, 3*oh*ow)
				if err := p.Apply(img, got); err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(name, ".jpg") {
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("value %d (c%d y%d x%d): got %v want %v", i, i/(oh*ow), i%(oh*ow)/ow, i%ow, got[i], want[i])
						}
					}
					return
				}
				var maxLevels, sumLevels float64
				for i := range got {
					c := i / (oh * ow)
					if p.cfg.DoFlipChannelOrder {
						c = 2 - c
					}
					d := math.Abs(float64(got[i]-want[i])) / level[c]
					maxLevels = max(maxLevels, d)
					sumLevels += d
				}
				t.Logf("rocket.jpg (Go image/jpeg vs libjpeg-turbo): max %.2f, mean %.3f levels of 255", maxLevels, sumLevels/float64(len(got)))
				if maxLevels > 3 || sumLevels/float64(len(got)) > 0.4 {
					t.Errorf("JPEG path differs by max %.2f, mean %.3f levels; bound is 3 and 0.4", maxLevels, sumLevels/float64(len(got)))
				}
			})
		}
	}
}

// TestApplyNoResizeCropAndFlip works one case out by hand: a 4×3 image,
// no resize, center crop 2×2 → rows 0..1 ((3−2)//2 = 0), columns 1..2;
// rescale by 1/255 in float64 then float32; BGR flip.
func TestApplyNoResizeCropAndFlip(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	for y := range 3 {
		for x := range 4 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(10*y + x), 100, uint8(200 + x), 255})
		}
	}
	p, err := NewPreprocessor(PreprocessorConfig{Class: "MobileViTImageProcessor", DoCenterCrop: true,
		CropSize: Size{Height: 2, Width: 2}, DoRescale: true, RescaleFactor: 1.0 / 255, DoFlipChannelOrder: true})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 12)
	if err := p.Apply(img, got); err != nil {
		t.Fatal(err)
	}
	f := func(u int) float32 { return float32(float64(u) * (1.0 / 255)) }
	want := []float32{
		f(201), f(202), f(201), f(202), // B plane first (flipped)
		f(100), f(100), f(100), f(100),
		f(1), f(2), f(11), f(12), // R plane last
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if err := p.Apply(img, make([]float32, 11)); !errors.Is(err, ErrShape) {
		t.Errorf("short dst: %v", err)
	}
}

// TestDecodeBMPAndTIFF: the x/image decoders are registered and their
// pixels reach the same RGB as the source.
func TestDecodeBMPAndTIFF(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range src.Pix {
		src.Pix[i] = uint8(40 * i)
	}
	for i := 3; i < len(src.Pix); i += 4 {
		src.Pix[i] = 255
	}
	for name, enc := range map[string]func(*bytes.Buffer) error{
		"bmp":  func(b *bytes.Buffer) error { return bmp.Encode(b, src) },
		"tiff": func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) },
	} {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			t.Fatal(err)
		}
		img, err := DecodeImageBytes("x."+name, b.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := toRGB(img, nil).Pix
		for i := range 6 {
			if !bytes.Equal(got[3*i:3*i+3], src.Pix[4*i:4*i+3]) {
				t.Fatalf("%s pixel %d: %v, want %v", name, i, got[3*i:3*i+3], src.Pix[4*i:4*i+3])
			}
		}
	}
}
