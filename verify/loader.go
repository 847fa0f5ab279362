package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// SkippedImage is an image the Loader left out because it failed to decode
// or preprocess.
type SkippedImage struct {
	Path  string `json:"path"`
	Error string `json:"error"`
	Err   error  `json:"-"`
}

// Loader fills batches of pixel_values, from a Dataset's images or from
// deterministic synthetic inputs. Images that fail to decode are skipped,
// never fatal: each is recorded with its error (Skipped) and the batch is
// filled from the following images, so one corrupt file costs one sample,
// not the run. Results should report len(Skipped()) beside the sample
// count.
type Loader struct {
	p       *Preprocessor
	samples []Sample
	synth   bool
	seed    uint64
	workers int
	pos     int
	loaded  int
	skipped []SkippedImage
}

// NewLoader makes a Loader over ds. workers ≤ 0 means GOMAXPROCS. The
// preprocessor must have a fixed output size (a center crop or a
// height×width resize), since a batch is one tensor.
func NewLoader(ds *Dataset, p *Preprocessor, workers int) (*Loader, error) {
	if p.SampleLen() == 0 {
		return nil, &ConfigError{Path: p.cfg.Source, Key: "size", Kind: ErrUnsupportedPreprocessor,
			Err: errors.New("output size depends on each image (shortest_edge without a crop); batches need a fixed size")}
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Loader{p: p, samples: ds.Samples, workers: workers}, nil
}

// NewSyntheticLoader makes a Loader of n synthetic inputs (see
// Preprocessor.Synthetic); sample i is the same for a given seed whatever
// the batch size or worker count. Results must say the inputs were
// synthetic (Loader.Synthetic).
func NewSyntheticLoader(p *Preprocessor, n int, seed uint64) (*Loader, error) {
	if p.SampleLen() == 0 {
		return nil, &ConfigError{Path: p.cfg.Source, Key: "size", Kind: ErrUnsupportedPreprocessor,
			Err: errors.New("synthetic inputs need a fixed output size")}
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: %d synthetic samples", ErrShape, n)
	}
	s := make([]Sample, n)
	for i := range s {
		s[i] = Sample{Path: fmt.Sprintf("synthetic:%d", i), Label: -1}
	}
	return &Loader{p: p, samples: s, synth: true, seed: seed, workers: runtime.GOMAXPROCS(0)}, nil
}

// Synthetic reports whether the inputs are synthetic rather than images.
func (l *Loader) Synthetic() bool { return l.synth }

// Len is the number of samples the Loader will try (skipped ones included).
func (l *Loader) Len() int { return len(l.samples) }

// Loaded is the number of samples delivered so far.
func (l *Loader) Loaded() int { return l.loaded }

// Skipped lists the images left out so far.
func (l *Loader) Skipped() []SkippedImage { return l.skipped }

// SampleLen is the number of float32 values per sample (3·H·W).
func (l *Loader) SampleLen() int { return l.p.SampleLen() }

// Reset starts over from the first sample and clears the skip list.
func (l *Loader) Reset() { l.pos, l.loaded, l.skipped = 0, 0, nil }

// Next fills dst with up to batch samples (dst must hold batch·SampleLen
// values) and returns the samples it holds, in dataset order; fewer than
// batch only at the end. It returns io.EOF when no sample is left, and
// ErrNoImages (wrapping the first decode error) when the dataset ended
// without a single image decoding.
func (l *Loader) Next(ctx context.Context, batch int, dst []float32) ([]Sample, error) {
	sl := l.p.SampleLen()
	if batch < 1 || len(dst) < batch*sl {
		return nil, fmt.Errorf("%w: batch %d needs %d values, dst has %d", ErrShape, batch, batch*sl, len(dst))
	}
	var out []Sample
	for len(out) < batch && l.pos < len(l.samples) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		base := len(out)
		cand := l.samples[l.pos:min(l.pos+batch-base, len(l.samples))]
		first := l.pos
		l.pos += len(cand)
		errs := l.fill(ctx, cand, first, dst[base*sl:(base+len(cand))*sl])
		// Compact: move each good sample down over the slots of failed ones.
		w := base
		for i, s := range cand {
			if errs[i] != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				l.skipped = append(l.skipped, SkippedImage{Path: s.Path, Error: errs[i].Error(), Err: errs[i]})
				continue
			}
			if w != base+i {
				copy(dst[w*sl:(w+1)*sl], dst[(base+i)*sl:(base+i+1)*sl])
			}
			out = append(out, s)
			w++
		}
	}
	l.loaded += len(out)
	if len(out) == 0 {
		if l.loaded == 0 && len(l.skipped) > 0 {
			return nil, fmt.Errorf("%w: %d of %d images failed, first: %w", ErrNoImages, len(l.skipped), len(l.samples), l.skipped[0].Err)
		}
		return nil, io.EOF
	}
	return out, nil
}

// fill preprocesses cand into consecutive slots of dst, in parallel.
func (l *Loader) fill(ctx context.Context, cand []Sample, first int, dst []float32) []error {
	sl := l.p.SampleLen()
	errs := make([]error, len(cand))
	work := func(i int) {
		slot := dst[i*sl : (i+1)*sl]
		if l.synth {
			errs[i] = l.p.Synthetic(l.seed, first+i, slot)
			return
		}
		errs[i] = l.p.ApplyFile(cand[i].Path, slot)
	}
	workers := min(l.workers, len(cand))
	if workers <= 1 {
		for i := range cand {
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				continue
			}
			work(i)
		}
		return errs
	}
	// Each sample's error is kept in its slot (a bad image does not stop
	// the others), so the group's own error is always nil.
	var g errgroup.Group
	g.SetLimit(workers)
	for i := range cand {
		g.Go(func() error {
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return nil
			}
			work(i)
			return nil
		})
	}
	g.Wait()
	return errs
}
