package tune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/verify"
)

// Inputs are the preprocessed samples every variant runs on, held in memory
// once: [N, 3, H, W] float32, with a label per sample (-1 when unknown).
type Inputs struct {
	X      []float32
	N      int
	H, W   int
	Labels []int
	// Source says where the inputs came from ("DIR (N of M images)" or
	// "synthetic N, seed S").
	Source string
	// Skipped counts images that failed to decode.
	Skipped int
}

// Labelled reports whether every sample has a label.
func (in *Inputs) Labelled() bool {
	if in.N == 0 {
		return false
	}
	for _, l := range in.Labels {
		if l < 0 {
			return false
		}
	}
	return true
}

// DefaultSamples is the number of synthetic inputs without images.
const DefaultSamples = 64

// LoadInputs preprocesses the calibration inputs for the model in dir (its
// preprocessor_config.json): the images of the ImageFolder images (labelled
// with the model's id2label as verify reads them), at most samples of them
// taken at an even stride so every class is represented; or, without
// images, samples synthetic inputs (seed 1).
func LoadInputs(ctx context.Context, dir, images string, samples int) (*Inputs, error) {
	return loadInputs(ctx, dir, images, samples, verify.DefaultSeed)
}

// loadInputs is LoadInputs with the synthetic inputs' seed.
func loadInputs(ctx context.Context, dir, images string, samples int, seed uint64) (*Inputs, error) {
	pre, err := verify.LoadPreprocessor(dir)
	if err != nil {
		return nil, err
	}
	h, w, ok := pre.FixedSize()
	if !ok {
		return nil, fmt.Errorf("%w: %s: preprocessing has no fixed output size", verify.ErrModelIO, pre.Config().Source)
	}
	var l *verify.Loader
	var src string
	if images == "" {
		if samples <= 0 {
			samples = DefaultSamples
		}
		if l, err = verify.NewSyntheticLoader(pre, samples, seed); err != nil {
			return nil, err
		}
		src = fmt.Sprintf("synthetic %d, seed %d", samples, seed)
	} else {
		var labels []string
		if cfg := filepath.Join(dir, "config.json"); fileExists(cfg) {
			labels, err = verify.LoadID2Label(cfg)
			if errors.Is(err, verify.ErrBadDataset) {
				labels, err = nil, nil // no id2label: folders are classes in sorted order
			}
			if err != nil {
				return nil, err
			}
		}
		ds, err := verify.ImageFolder(images, labels)
		if err != nil {
			return nil, err
		}
		total := len(ds.Samples)
		if samples > 0 && samples < total {
			ds.Samples = stride(ds.Samples, samples)
		}
		src = fmt.Sprintf("%s (%d of %d images)", images, len(ds.Samples), total)
		if l, err = verify.NewLoader(ds, pre, 0); err != nil {
			return nil, err
		}
	}
	in := &Inputs{H: h, W: w, Source: src}
	const batch = 32
	sl := l.SampleLen()
	buf := make([]float32, batch*sl)
	for {
		got, err := l.Next(ctx, batch, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		in.X = append(in.X, buf[:len(got)*sl]...)
		for _, s := range got {
			in.Labels = append(in.Labels, s.Label)
		}
		in.N += len(got)
	}
	in.Skipped = len(l.Skipped())
	if in.N == 0 {
		return nil, fmt.Errorf("%w: no inputs", verify.ErrNoImages)
	}
	return in, nil
}

// stride picks n samples spread evenly over s (deterministic).
func stride(s []verify.Sample, n int) []verify.Sample {
	out := make([]verify.Sample, n)
	for i := range out {
		out[i] = s[i*len(s)/n]
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
