package quantize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/quantpack/quantpack/verify"
)

// SourceInfo describes the calibration inputs in the manifest.
type SourceInfo struct {
	// Kind is "images", "npy" or "synthetic".
	Kind string `json:"kind"`
	// Path is the image folder or the .npy file(s) (NAME=FILE, comma-joined).
	Path string `json:"path,omitempty"`
	// SHA256 identifies the samples used: for images, the sha256 of their
	// "<sha256>  <path relative to the folder>\n" lines in the order used
	// (the SHA256SUMS format); for .npy, of the files' "<sha256>  NAME\n"
	// lines; empty for synthetic inputs.
	SHA256 string `json:"sha256,omitempty"`
	// Count is the number of samples the calibration ran on.
	Count int `json:"count"`
	// Skipped counts images that failed to decode (listed in SkippedFiles).
	Skipped      int      `json:"skipped"`
	SkippedFiles []string `json:"skipped_files,omitempty"`
	Seed         uint64   `json:"seed,omitempty"`
	// Preprocessor is where the image preprocessing came from.
	Preprocessor string `json:"preprocessor,omitempty"`
}

// Source yields batches of calibration inputs, one tensor per model input.
type Source interface {
	// Next returns the next batch, or io.EOF after the last.
	Next(ctx context.Context) ([]verify.Tensor, error)
	// Info describes the samples delivered so far.
	Info() SourceInfo
	Close() error
}

// imageSource feeds preprocessed images (or verify's synthetic pictures)
// through a verify.Loader: the exact preprocessing of `verify --images`.
type imageSource struct {
	l     *verify.Loader
	input verify.IOInfo
	h, w  int // the preprocessor's output size
	batch int
	buf   []float32
	info  SourceInfo
	root  string
	used  []string
}

// NewImageSource makes a Source over the first n images of dir (an
// ImageFolder or a flat folder), preprocessed by pre. Class folders are
// interleaved (the first image of every class, then the second, …) so that
// the first n samples cover every class.
func NewImageSource(dir string, pre *verify.Preprocessor, input verify.IOInfo, n, batch int) (Source, error) {
	ds, err := verify.ImageFolder(dir, nil)
	if err != nil {
		return nil, err
	}
	ds.Samples = interleave(ds.Samples)
	if n > 0 && len(ds.Samples) > n {
		ds.Samples = ds.Samples[:n]
	}
	l, err := verify.NewLoader(ds, pre, 0)
	if err != nil {
		return nil, err
	}
	if err := checkImageInput(input, pre); err != nil {
		return nil, err
	}
	h, w, _ := pre.FixedSize()
	s := &imageSource{l: l, input: input, h: h, w: w, batch: batch, buf: make([]float32, batch*l.SampleLen()), root: dir,
		info: SourceInfo{Kind: "images", Path: dir, Preprocessor: pre.Config().Source}}
	for _, smp := range ds.Samples {
		s.used = append(s.used, smp.Path)
	}
	return s, nil
}

// NewSyntheticImageSource makes a Source of n synthetic pictures (verify's
// generator) preprocessed by pre.
func NewSyntheticImageSource(pre *verify.Preprocessor, input verify.IOInfo, n, batch int, seed uint64) (Source, error) {
	l, err := verify.NewSyntheticLoader(pre, n, seed)
	if err != nil {
		return nil, err
	}
	if err := checkImageInput(input, pre); err != nil {
		return nil, err
	}
	h, w, _ := pre.FixedSize()
	return &imageSource{l: l, input: input, h: h, w: w, batch: batch, buf: make([]float32, batch*l.SampleLen()),
		info: SourceInfo{Kind: "synthetic", Seed: seed, Preprocessor: pre.Config().Source}}, nil
}

func checkImageInput(in verify.IOInfo, pre *verify.Preprocessor) error {
	h, w, _ := pre.FixedSize()
	if in.DType != verify.Float32 || len(in.Shape) != 4 || !dimFits(in.Shape[1], 3) || !dimFits(in.Shape[2], int64(h)) || !dimFits(in.Shape[3], int64(w)) {
		return fmt.Errorf("%w: input %q: expected float32 %v, the preprocessor makes [N,3,%d,%d]", ErrCalibData, in.Name, in.Shape, h, w)
	}
	return nil
}

func dimFits(model, got int64) bool { return model < 0 || model == got }

// interleave orders samples class by class in turn: the i-th sample of
// every class folder before the (i+1)-th of any. Unlabelled samples (a
// flat folder) keep their order.
func interleave(s []verify.Sample) []verify.Sample {
	var folders []string
	by := map[string][]verify.Sample{}
	for _, x := range s {
		if _, ok := by[x.Folder]; !ok {
			folders = append(folders, x.Folder)
		}
		by[x.Folder] = append(by[x.Folder], x)
	}
	out := make([]verify.Sample, 0, len(s))
	for i := 0; len(out) < len(s); i++ {
		for _, f := range folders {
			if i < len(by[f]) {
				out = append(out, by[f][i])
			}
		}
	}
	return out
}

func (s *imageSource) Next(ctx context.Context) ([]verify.Tensor, error) {
	got, err := s.l.Next(ctx, s.batch, s.buf)
	if err != nil {
		return nil, err
	}
	n := len(got)
	sl := s.l.SampleLen()
	shape := []int64{int64(n), 3, int64(s.h), int64(s.w)}
	return []verify.Tensor{{Name: s.input.Name, DType: verify.Float32, Shape: shape, F32: slices.Clone(s.buf[:n*sl])}}, nil
}

func (s *imageSource) Info() SourceInfo {
	info := s.info
	info.Count = s.l.Loaded()
	for _, sk := range s.l.Skipped() {
		info.Skipped++
		info.SkippedFiles = append(info.SkippedFiles, sk.Path)
	}
	if s.root != "" {
		info.SHA256 = s.sumOfFiles(info.SkippedFiles)
	}
	return info
}

// sumOfFiles hashes the SHA256SUMS lines of the images used.
func (s *imageSource) sumOfFiles(skipped []string) string { return s.sumOfFilesFrom(0, skipped) }

// sumOfFilesFrom is sumOfFiles without the first from images that decoded
// (the held-out samples of --min-cosine come after the calibration ones).
func (s *imageSource) sumOfFilesFrom(from int, skipped []string) string {
	h := sha256.New()
	for _, p := range s.used {
		if slices.Contains(skipped, p) {
			continue
		}
		if from > 0 {
			from--
			continue
		}
		sum, err := fileSHA256(p)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			rel = p
		}
		fmt.Fprintf(h, "%s  %s\n", sum, filepath.ToSlash(rel))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *imageSource) Close() error { return nil }

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// randomSource makes n samples of standard normal values for every float32
// input of a model without a preprocessor; dynamic dimensions are 1.
type randomSource struct {
	inputs []verify.IOInfo
	n, pos int
	batch  int
	seed   uint64
}

// NewRandomSource makes n synthetic samples of N(0,1) values per input.
func NewRandomSource(inputs []verify.IOInfo, n, batch int, seed uint64) (Source, error) {
	for _, in := range inputs {
		if in.DType != verify.Float32 {
			return nil, fmt.Errorf("%w: input %q is %s; synthetic calibration inputs are float32 only (give --calib-data)", ErrCalibData, in.Name, in.DType)
		}
	}
	return &randomSource{inputs: inputs, n: n, batch: batch, seed: seed}, nil
}

func (s *randomSource) Next(ctx context.Context) ([]verify.Tensor, error) {
	if s.pos >= s.n {
		return nil, io.EOF
	}
	b := min(s.batch, s.n-s.pos)
	var out []verify.Tensor
	for k, in := range s.inputs {
		shape := append([]int64{int64(b)}, in.Shape[1:]...)
		per := int64(1)
		for i := 1; i < len(shape); i++ {
			if shape[i] < 0 {
				shape[i] = 1
			}
			per *= shape[i]
		}
		v := make([]float32, int64(b)*per)
		for j := 0; j < b; j++ {
			r := rand.New(rand.NewPCG(s.seed, uint64(s.pos+j)<<8|uint64(k)))
			for i := range per {
				v[int64(j)*per+i] = float32(r.NormFloat64())
			}
		}
		out = append(out, verify.Tensor{Name: in.Name, DType: verify.Float32, Shape: shape, F32: v})
	}
	s.pos += b
	return out, nil
}

func (s *randomSource) Info() SourceInfo {
	return SourceInfo{Kind: "synthetic", Count: s.pos, Seed: s.seed}
}

func (s *randomSource) Close() error { return nil }
