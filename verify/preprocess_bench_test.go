package verify

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// benchJPEGs encodes n distinct 640×480 synthetic pictures as JPEG
// (quality 90, 4:2:0, what cameras and datasets mostly hold).
func benchJPEGs(b *testing.B, n int) [][]byte {
	out := make([][]byte, n)
	pix := make([]uint8, 3*640*480)
	for i := range out {
		drawSynthetic(rand.New(rand.NewPCG(99, uint64(i))), 640, 480, pix)
		img := image.NewRGBA(image.Rect(0, 0, 640, 480))
		for j := 0; j < 640*480; j++ {
			copy(img.Pix[4*j:4*j+3], pix[3*j:3*j+3])
			img.Pix[4*j+3] = 255
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		out[i] = buf.Bytes()
	}
	return out
}

// BenchmarkPreprocessJPEG640x480 decodes, resizes, crops and normalizes
// 640×480 JPEGs in parallel over GOMAXPROCS goroutines, one image per op.
// The target is 1000 images in under 10 s on 2 cores, i.e. 20 cpu-ms/image
// (the CPU figure, unlike images/s, holds on a machine shared with other
// jobs):
//
//	go test ./verify -run '^$' -bench PreprocessJPEG -benchtime 1000x
func BenchmarkPreprocessJPEG640x480(b *testing.B) {
	imgs := benchJPEGs(b, 8)
	for _, model := range []string{"vit", "dinov2", "deit"} {
		cfg, err := DefaultPreprocessorConfig(model, 224)
		if err != nil {
			b.Fatal(err)
		}
		p, err := NewPreprocessor(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s_%s", model, cfg.Resample), func(b *testing.B) {
			b.SetBytes(int64(len(imgs[0])))
			b.ReportAllocs()
			cpu0 := processCPUTime()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]float32, p.SampleLen())
				i := 0
				for pb.Next() {
					img, err := DecodeImageBytes("bench.jpg", imgs[i%len(imgs)])
					if err != nil {
						b.Error(err)
						return
					}
					if err := p.Apply(img, dst); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
			if cpu := processCPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/image")
			}
		})
	}
}

// BenchmarkResize640x480 isolates the Pillow-exact resampler (no decode).
func BenchmarkResize640x480(b *testing.B) {
	src := rgbImage{W: 640, H: 480, Pix: make([]uint8, 3*640*480)}
	drawSynthetic(rand.New(rand.NewPCG(1, 1)), 640, 480, src.Pix)
	for _, tc := range []struct {
		name   string
		r      Resample
		w, h   int
		window [4]int
	}{
		{"bicubic_341x256_crop224", ResampleBicubic, 341, 256, [4]int{58, 16, 282, 240}},
		{"bilinear_224x224", ResampleBilinear, 224, 224, [4]int{0, 0, 224, 224}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dst := make([]uint8, 3*224*224)
			var sc resizeScratch
			b.SetBytes(int64(len(src.Pix)))
			b.ReportAllocs()
			for b.Loop() {
				resizeWindow(src, tc.w, tc.h, tc.r, tc.window[0], tc.window[1], tc.window[2], tc.window[3], dst, &sc)
			}
		})
	}
}
