package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/quantpack/quantpack/internal/hfconfig"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

// Fuzz targets for every parser in this package. Seeds come from the
// writers (encoders, json.Marshal) and the fixtures; `go test` runs the
// seeds, `go test -fuzz=FuzzX` explores.

func FuzzParsePreprocessorConfig(f *testing.F) {
	for _, m := range []string{"vit", "deit", "beit", "dinov2", "mobilevit"} {
		c, _ := DefaultPreprocessorConfig(m, 224)
		b, _ := json.Marshal(map[string]any{"image_processor_type": c.Class, "size": c.Size, "crop_size": c.CropSize,
			"resample": int(c.Resample), "image_mean": c.ImageMean, "image_std": c.ImageStd, "do_center_crop": c.DoCenterCrop})
		f.Add(b, m)
	}
	if dirs, _ := filepath.Glob(filepath.Join("testdata", "pil", "config", "*", "preprocessor_config.json")); len(dirs) > 0 {
		for _, d := range dirs {
			b, _ := os.ReadFile(d)
			f.Add(b, "")
		}
	}
	f.Add([]byte(`{"size":{"longest_edge":3},"image_processor_type":"BitImageProcessor"}`), "")
	f.Add([]byte(`{"size":[1],"image_mean":1e400}`), "vit")
	f.Fuzz(func(t *testing.T, data []byte, modelType string) {
		c, err := ParsePreprocessorConfig("fuzz.json", data, modelType)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		// A config that parses must build and run on a small image without
		// panicking, unless its output would be huge.
		p, err := NewPreprocessor(c)
		if err != nil {
			t.Fatalf("parsed config rejected by NewPreprocessor: %v", err)
		}
		oh, ow := p.OutputSize(7, 5)
		if oh*ow > 1<<16 {
			return
		}
		img := image.NewRGBA(image.Rect(0, 0, 7, 5))
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 37)
		}
		if err := p.Apply(img, make([]float32, 3*oh*ow)); err != nil {
			t.Fatal(err)
		}
	})
}

func encodedSeeds(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 29)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	f.Add(append([]byte(nil), b.Bytes()...))
	b.Reset()
	jpeg.Encode(&b, img, nil)
	f.Add(append([]byte(nil), b.Bytes()...))
	b.Reset()
	gif.Encode(&b, img, nil)
	f.Add(append([]byte(nil), b.Bytes()...))
	b.Reset()
	bmp.Encode(&b, img)
	f.Add(append([]byte(nil), b.Bytes()...))
	b.Reset()
	png.Encode(&b, image.NewGray16(image.Rect(0, 0, 2, 2)))
	f.Add(append([]byte(nil), b.Bytes()...))
	for _, name := range []string{"palette_color.png", "truncated.jpg"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "fixtures", "images", name)); err == nil {
			f.Add(data)
		}
	}
}

func FuzzDecodeImageBytes(f *testing.F) {
	encodedSeeds(f)
	p, err := NewPreprocessor(PreprocessorConfig{Class: "BitImageProcessor", DoResize: true, Size: Size{ShortestEdge: 6},
		Resample: ResampleBicubic, DoCenterCrop: true, CropSize: Size{Height: 5, Width: 5}, DoRescale: true,
		RescaleFactor: 1.0 / 255, DoNormalize: true, ImageMean: hfconfig.ImageNetDefaultMean, ImageStd: hfconfig.ImageNetDefaultStd})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImageBytes("fuzz", data)
		if err != nil {
			var ie *ImageError
			if !errors.As(err, &ie) || ie.Path != "fuzz" {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		out := make([]float32, 3*5*5)
		if err := p.Apply(img, out); err != nil {
			t.Fatal(err)
		}
		for _, v := range out {
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 3 { // (0−0.485)/0.229 ≈ −2.1 … (1−0.406)/0.225 ≈ 2.6
				t.Fatalf("value %v outside the normalized range", v)
			}
		}
	})
}

// FuzzResizeWindow: any sizes, filter and window give the same pixels as
// the full resize cropped, without panicking.
func FuzzResizeWindow(f *testing.F) {
	f.Add(uint8(67), uint8(45), uint8(32), uint8(24), uint8(3), uint8(5), uint8(3), uint8(20), uint8(9))
	f.Add(uint8(1), uint8(1), uint8(200), uint8(7), uint8(1), uint8(0), uint8(0), uint8(255), uint8(255))
	f.Fuzz(func(t *testing.T, sw, sh, ow, oh, filt, x0, y0, x1, y1 uint8) {
		w, h, W, H := int(sw%60)+1, int(sh%60)+1, int(ow%90)+1, int(oh%90)+1
		r := Resample(int(filt) % 6)
		a, b := int(x0)%W, int(x1)%W
		c, d := int(y0)%H, int(y1)%H
		xa, xb := min(a, b), max(a, b)+1
		ya, yb := min(c, d), max(c, d)+1
		src := rgbImage{W: w, H: h, Pix: make([]uint8, 3*w*h)}
		for i := range src.Pix {
			src.Pix[i] = uint8(i*97 + i/7)
		}
		full := make([]uint8, 3*W*H)
		resizeWindow(src, W, H, r, 0, 0, W, H, full, &resizeScratch{})
		win := make([]uint8, 3*(xb-xa)*(yb-ya))
		resizeWindow(src, W, H, r, xa, ya, xb, yb, win, &resizeScratch{})
		for y := ya; y < yb; y++ {
			if !bytes.Equal(win[3*(y-ya)*(xb-xa):3*(y-ya+1)*(xb-xa)], full[3*(y*W+xa):3*(y*W+xb)]) {
				t.Fatalf("%v %dx%d→%dx%d window [%d,%d)×[%d,%d) row %d differs", r, w, h, W, H, xa, xb, ya, yb, y)
			}
		}
	})
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add([]byte(x86CPUInfo))
	f.Add([]byte(armCPUInfo))
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info := parseCPUInfo(bytes.NewReader(data))
		if info.cores < 0 || info.cores > len(data) {
			t.Fatalf("cores %d from %d bytes", info.cores, len(data))
		}
		_ = cpuFlags(info.flags)
	})
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add([]byte("VmHWM:\t  2048 kB\nVmRSS:\t    1024 kB\n"))
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseProcStatus(data)
		if err == nil && (r.Current < 0 || r.Peak < 0) {
			t.Fatalf("negative RSS %+v", r)
		}
	})
}

func FuzzParseLabels(f *testing.F) {
	f.Add([]byte("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"))
	f.Add([]byte("cat\n\ndog"))
	f.Add([]byte("crane\ncrane\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		labels, err := parseLabels("fuzz.txt", data)
		if err != nil {
			if !errors.Is(err, ErrBadDataset) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Every label either matches some index in range or is reported
		// ambiguous; never out of range.
		for i, l := range labels {
			folder := strings.Split(l, ",")[0]
			idx, err := MatchLabel(folder, labels)
			if err == nil && (idx < 0 || idx >= len(labels)) {
				t.Fatalf("label %d %q matched index %d of %d", i, l, idx, len(labels))
			}
		}
	})
}
