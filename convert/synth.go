package convert

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"golang.org/x/sync/errgroup"
)

// SynthResult describes a synthesized checkpoint.
type SynthResult struct {
	Preset  string `json:"preset"`
	Repo    string `json:"repo"`
	Arch    string `json:"architecture"`
	Dir     string `json:"dir"`
	Params  int64  `json:"params"`
	Bytes   int64  `json:"bytes"`
	Tensors int    `json:"tensors"`
	Seed    uint64 `json:"seed"`
}

// Synth writes a Hugging Face checkpoint directory with the preset's real
// config and random weights whose statistics resemble trained ones (see
// synthInit). Tensors are generated and written one at a time, so memory is
// bounded by the largest tensor; the output is a function of (preset, seed)
// only, whatever the thread count.
func Synth(ctx context.Context, name, out string, seed uint64, threads int) (*SynthResult, error) {
	p, err := LookupPreset(name)
	if err != nil {
		return nil, err
	}
	cfgBytes, err := json.MarshalIndent(p.Config, "", "  ")
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(name+"/config.json", cfgBytes)
	if err != nil {
		return nil, err
	}
	arch, err := LookupArch(p.Arch)
	if err != nil {
		return nil, err
	}
	specs, err := arch.Tensors(cfg, p.Pooler)
	if err != nil {
		return nil, err
	}
	dir, err := atomicfile.CreateDir(out)
	if err != nil {
		return nil, outputErr(err)
	}
	defer dir.Abort()
	w, err := safetensors.Create(dir.Join("model.safetensors"), map[string]string{"format": "pt"}, specs)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	res := &SynthResult{Preset: p.Name, Repo: p.Repo, Arch: p.Arch, Dir: out, Tensors: len(specs), Seed: seed}
	for _, s := range specs {
		if s.DType == safetensors.F32 {
			res.Params += specBytes(s) / 4
		}
	}
	if err := synthWrite(ctx, w, specs, cfg, seed, threads); err != nil {
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	res.Bytes = w.Size()
	if err := atomicfile.WriteFile(dir.Join("config.json"), append(cfgBytes, '\n')); err != nil {
		return nil, err
	}
	if p.Pre != nil {
		b, err := json.MarshalIndent(p.Pre, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(dir.Join("preprocessor_config.json"), append(b, '\n')); err != nil {
			return nil, err
		}
	}
	if err := dir.CommitContext(ctx); err != nil {
		return nil, err
	}
	res.Dir = filepath.Clean(out)
	return res, nil
}

func synthWrite(ctx context.Context, w *safetensors.Writer, specs specList, cfg *Config, seed uint64, threads int) error {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	layerScale := cfg.Float("layer_scale_init_value", cfg.Float("layerscale_value", 1))
	// Buffers are reused across tensors: at most threads run at once, so
	// a free one is always waiting.
	bufs := make(chan []float32, threads)
	for range threads {
		bufs <- nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(threads)
	for _, s := range specs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if s.DType != safetensors.F32 {
				// Counters such as BatchNorm's num_batches_tracked (I64):
				// zero, as a freshly saved module has.
				return w.WriteTensor(s.Name, make([]byte, specBytes(s)))
			}
			buf := grow(<-bufs, int(specBytes(s)/4))
			defer func() { bufs <- buf }()
			synthInit(buf, s, seed, layerScale)
			return w.WriteTensor(s.Name, bytesOfF32(buf))
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// synthInit fills one tensor. Each tensor has its own generator seeded by
// (seed, name), so values do not depend on the order of generation.
//
// Statistics chosen to look like trained vision transformers rather than a
// fresh init: Linear weights ~N(0, 0.02²) with 1% of input columns scaled ×6
// (trained ViTs have outlier feature dimensions, which is what makes per-row
// int8 and blockwise 4-bit behave differently); LayerNorm weights around 1,
// biases small, layer scales around the config's init value.
func synthInit(dst []float32, s safetensors.TensorSpec, seed uint64, layerScale float64) {
	h := fnv.New64a()
	h.Write([]byte(s.Name))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	name := s.Name
	mean, std := 0.0, 0.02
	switch {
	case strings.HasSuffix(name, "lambda1") || strings.HasSuffix(name, "lambda_1") || strings.HasSuffix(name, "lambda_2"):
		mean, std = layerScale, 0.2*layerScale
	case strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight") && len(s.Shape) == 1:
		mean, std = 1, 0.1
	case strings.HasSuffix(name, ".bias"):
		std = 0.01
	case strings.HasSuffix(name, "running_var"):
		mean, std = 1, 0.1
	case len(s.Shape) == 4 && strings.HasSuffix(name, ".weight"):
		// Convolutions: He init, sqrt(2/fan_in), so activations keep their
		// scale through a conv net (BatchNorm's synthetic running stats
		// near 1 do not renormalise them).
		fanIn := s.Shape[1] * s.Shape[2] * s.Shape[3]
		std = math.Sqrt(2 / float64(max(fanIn, 1)))
	}
	fillNormal(dst, r, mean, std)
	if strings.HasSuffix(name, "running_var") {
		for i, v := range dst {
			dst[i] = float32(math.Abs(float64(v))) + 1e-3
		}
	}
	if len(s.Shape) == 2 && strings.HasSuffix(name, ".weight") && s.Shape[1] >= 100 {
		cols := int(s.Shape[1])
		for c := 0; c < cols/100; c++ {
			col := r.IntN(cols)
			for row := 0; row < int(s.Shape[0]); row++ {
				dst[row*cols+col] *= 6
			}
		}
	}
}

// fillNormal draws approximately normal values: the sum of four 16-bit
// uniforms (Irwin–Hall, n=4) from one 64-bit draw, standardised. Its tails
// stop at ±3.46σ, which suits weights, and it costs one generator call per
// value (synth of ViT-Huge writes 632M of them).
func fillNormal(dst []float32, r *rand.Rand, mean, std float64) {
	// Sum of four U(0,65535): mean 2·65535, variance 4·(65536²-1)/12.
	const mu = 2 * 65535.0
	sigma := math.Sqrt(4 * (65536.0*65536.0 - 1) / 12)
	k := std / sigma
	for i := range dst {
		u := r.Uint64()
		s := float64(u&0xffff) + float64(u>>16&0xffff) + float64(u>>32&0xffff) + float64(u>>48)
		dst[i] = float32(mean + (s-mu)*k)
	}
}
