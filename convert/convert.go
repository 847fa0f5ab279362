package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
	"github.com/quantpack/quantpack/quant"
)

// DefaultShardBytes matches transformers' save_pretrained default
// max_shard_size of 5 GB.
const DefaultShardBytes = 5_000_000_000

// Options are convert's flags.
type Options struct {
	Precision   Precision
	BlockSize   int      // 0: DefaultInt4Block or DefaultNF4Block
	DoubleQuant bool     // nf4: quantize the absmax values too
	Asymmetric  bool     // int4: min/max with zero points instead of symmetric
	Keep        []string // globs of tensor names to keep float
	RestDType   string   // fp32|fp16|bf16 for tensors that stay float; "" = fp16
	Threads     int      // 0: runtime.NumCPU()
	Generic     bool     // allow an architecture quantpack does not know
	ShardBytes  int64    // 0: DefaultShardBytes
	NoStats     bool     // skip the per-tensor error statistics

	// Method chooses the int4/nf4 block scales: "" or rtn, mse, hqq (int4
	// only; implies Asymmetric). See quant.Method.
	Method quant.Method
	// Progress, when set, is called after each tensor with bytes of input
	// done and the total. It may be called from several goroutines.
	Progress func(done, total int64)
}

func (o *Options) blockSize() int {
	if o.BlockSize > 0 {
		return o.BlockSize
	}
	if o.Precision == NF4 {
		return DefaultNF4Block
	}
	return DefaultInt4Block
}

func (o *Options) rest() string {
	switch o.Precision {
	case FP16:
		return SchemeFP16
	case BF16:
		return SchemeBF16
	}
	switch o.RestDType {
	case "fp32":
		return SchemeFP32
	case "bf16":
		return SchemeBF16
	}
	return SchemeFP16
}

// restTorchDType is the torch dtype name of tensors kept float.
func (o *Options) restTorchDType() string {
	switch o.rest() {
	case SchemeFP32:
		return "float32"
	case SchemeBF16:
		return "bfloat16"
	}
	return "float16"
}

func (o *Options) validate() error {
	if _, err := ParsePrecision(string(o.Precision)); err != nil {
		return usage(err)
	}
	switch o.RestDType {
	case "", "fp32", "fp16", "bf16":
	default:
		return usage(fmt.Errorf("--rest-dtype %q: want fp32, fp16 or bf16", o.RestDType))
	}
	if o.BlockSize != 0 {
		bs := o.BlockSize
		switch o.Precision {
		case Int4:
			// MatMulNBits accepts powers of two ≥ 16.
			if bs < 16 || bs > 256 || bs&(bs-1) != 0 {
				return usage(fmt.Errorf("--block-size %d: int4 wants a power of two from 16 to 256", bs))
			}
		case NF4:
			// bitsandbytes supports 64..4096 (powers of two); MatMulBnb4
			// any power of two ≥ 16.
			if bs < 16 || bs > 4096 || bs&(bs-1) != 0 {
				return usage(fmt.Errorf("--block-size %d: nf4 wants a power of two from 16 to 4096", bs))
			}
		default:
			return usage(fmt.Errorf("--block-size applies to int4 and nf4 only"))
		}
	}
	if err := o.validateMethod(); err != nil {
		return err
	}
	if o.DoubleQuant && o.Precision != NF4 {
		return usage(fmt.Errorf("--double-quant applies to nf4 only"))
	}
	if o.Threads < 0 {
		return usage(fmt.Errorf("--threads %d: want ≥ 0", o.Threads))
	}
	return ValidateGlobs(o.Keep)
}

// Source is an opened checkpoint with its config and architecture.
type Source struct {
	Path   string
	Dir    string // the directory holding config.json, or "" for a bare file
	Ckpt   *safetensors.Checkpoint
	Config *Config // nil for a bare .safetensors file
	Arch   *Arch   // nil when unknown and allowed (generic policy)
}

// OpenSource opens a model directory or a single .safetensors file. An
// unknown architecture is an error unless generic is set.
func OpenSource(path string, generic bool) (*Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	s := &Source{Path: path}
	if fi.IsDir() {
		s.Dir = path
		if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
			if s.Config, err = LoadConfig(path); err != nil {
				return nil, err
			}
			arch, err := LookupArch(s.Config.Architecture())
			if err != nil && !generic {
				return nil, fmt.Errorf("%s: %w (pass --generic to convert with the generic Linear-only policy)", path, err)
			}
			s.Arch = arch
		} else if !generic {
			return nil, fmt.Errorf("%s: %w: no config.json (pass --generic to convert anyway)", path, ErrUnsupported)
		}
	}
	if s.Ckpt, err = safetensors.OpenCheckpoint(path); err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases the checkpoint.
func (s *Source) Close() error { return s.Ckpt.Close() }

// ArchName is the architecture for manifests.
func (s *Source) ArchName() string {
	if s.Arch != nil {
		return s.Arch.Name
	}
	if s.Config != nil && s.Config.Architecture() != "" {
		return s.Config.Architecture() + " (generic policy)"
	}
	return "unknown (generic policy)"
}

// Convert converts the checkpoint at src into an artifact directory out,
// which must not exist or be empty. The artifact appears only when complete.
func Convert(ctx context.Context, src, out string, opt Options) (*Manifest, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	s, err := OpenSource(src, opt.Generic)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	dir, err := atomicfile.CreateDir(out)
	if err != nil {
		return nil, outputErr(err)
	}
	defer dir.Abort()
	m, err := convertInto(ctx, s, dir.Tmp(), opt)
	if err != nil {
		return nil, err
	}
	if err := dir.Commit(); err != nil {
		return nil, err
	}
	return m, nil
}

func convertInto(ctx context.Context, s *Source, dir string, opt Options) (*Manifest, error) {
	items, err := planAll(s, &opt)
	if err != nil {
		return nil, err
	}
	// Hash the source files while the workers quantize: the hash is one
	// sequential pass over the whole checkpoint, and overlapping it with the
	// workers' reads and writes hides most of its cost.
	srcHash := hashSources(ctx, s.Ckpt.Files())
	meta := map[string]string{"format": "pt"}
	for k, v := range s.Ckpt.Metadata() {
		meta[k] = v
	}
	meta["format"] = "pt" // transformers refuses other formats
	ws, err := createWriters(dir, items, meta, opt.ShardBytes)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, w := range ws {
			w.Abort()
		}
	}()
	if err := runItems(ctx, items, ws, &opt); err != nil {
		return nil, err
	}
	for _, w := range uniqueWriters(ws) {
		if err := w.Commit(); err != nil {
			return nil, err
		}
	}
	if err := writeConfig(s, dir, items, &opt); err != nil {
		return nil, err
	}
	m, err := buildManifest(s, dir, items, &opt, srcHash)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, manifest.Name), append(b, '\n')); err != nil {
		return nil, err
	}
	return m, nil
}

// planAll decides each tensor's role, scheme and outputs.
func planAll(s *Source, opt *Options) ([]*item, error) {
	var items []*item
	rest := opt.rest()
	seen := map[string]string{}
	for _, e := range s.Ckpt.Tensors() {
		role := RoleOf(s.Arch, opt.Keep, e.TensorInfo)
		it := &item{src: e, role: role, scheme: SchemeFor(s.Arch, role, opt.Precision, rest)}
		if err := planItem(it, opt); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		it.rec = &TensorRecord{Name: e.Name, Role: role, Scheme: it.scheme, DType: string(e.DType),
			Shape: append([]int64{}, e.Shape...), BytesIn: e.Size}
		if it.rec.Shape == nil {
			it.rec.Shape = []int64{}
		}
		for _, o := range it.outs {
			if prev, dup := seen[o.Name]; dup {
				return nil, fmt.Errorf("%w: output tensor %q of %q collides with one made from %q",
					ErrUnsupported, o.Name, e.Name, prev)
			}
			seen[o.Name] = e.Name
			it.rec.Outputs = append(it.rec.Outputs, o.Name)
			it.rec.BytesOut += specBytes(o)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: %w: checkpoint has no tensors", s.Path, ErrMissing)
	}
	return items, nil
}

func specBytes(o safetensors.TensorSpec) int64 {
	n := int64(1)
	for _, d := range o.Shape {
		n *= d
	}
	return n * int64(o.DType.Size())
}

// createWriters plans shards and opens one writer per shard; the returned map
// sends each output tensor name to its writer.
func createWriters(dir string, items []*item, meta map[string]string, shardBytes int64) (map[string]*safetensors.Writer, error) {
	if shardBytes <= 0 {
		shardBytes = DefaultShardBytes
	}
	var specs []safetensors.TensorSpec
	var total int64
	for _, it := range items {
		specs = append(specs, it.outs...)
		for _, o := range it.outs {
			total += specBytes(o)
		}
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	shards := [][]safetensors.TensorSpec{specs}
	if total > shardBytes {
		shards = safetensors.PlanShards(specs, shardBytes)
	}
	ws := map[string]*safetensors.Writer{}
	weightMap := map[string]string{}
	for i, sh := range shards {
		name := "model.safetensors"
		if len(shards) > 1 {
			name = safetensors.ShardName(i+1, len(shards))
		}
		w, err := safetensors.Create(filepath.Join(dir, name), meta, sh)
		if err != nil {
			for _, w := range uniqueWriters(ws) {
				w.Abort()
			}
			return nil, err
		}
		for _, sp := range sh {
			ws[sp.Name] = w
			weightMap[sp.Name] = name
		}
	}
	if len(shards) > 1 {
		if err := safetensors.WriteIndex(filepath.Join(dir, "model.safetensors.index.json"), total, weightMap); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

func uniqueWriters(ws map[string]*safetensors.Writer) []*safetensors.Writer {
	seen := map[*safetensors.Writer]bool{}
	var out []*safetensors.Writer
	for _, w := range ws {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// runItems quantizes every tensor on opt.Threads workers. Each tensor is
// handled start to finish by one worker and written at its precomputed offset,
// so the output bytes do not depend on the thread count or the schedule.
func runItems(ctx context.Context, items []*item, ws map[string]*safetensors.Writer, opt *Options) error {
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	var total int64
	for _, it := range items {
		total += it.src.Size
	}
	// Largest first, so the last worker is not left with a huge tensor.
	order := make([]*item, len(items))
	copy(order, items)
	sort.SliceStable(order, func(i, j int) bool { return order[i].src.Size > order[j].src.Size })
	jobs := make(chan *item)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     int64
	)
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc scratch
			for it := range jobs {
				if err := processItem(it, ws, &sc, opt); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					continue
				}
				mu.Lock()
				done += it.src.Size
				d := done
				mu.Unlock()
				if opt.Progress != nil {
					opt.Progress(d, total)
				}
			}
		}()
	}
feed:
	for _, it := range order {
		select {
		case jobs <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// buildManifest totals the records and hashes the written files.
func buildManifest(s *Source, dir string, items []*item, opt *Options, srcHash func() ([]manifest.File, error)) (*Manifest, error) {
	m := &Manifest{Format: ManifestFormat, Kind: "safetensors", ToolVersion: version.Version,
		Precision: opt.Precision, Architecture: s.ArchName()}
	if s.Config != nil {
		m.ModelType = s.Config.ModelType()
	}
	m.Scheme = SchemeParams{RestDType: opt.rest(), Keep: opt.Keep}
	switch opt.Precision {
	case Int8:
		m.Scheme.Int8 = "rowwise absmax (bitsandbytes LLM.int8: w = q*SCB/127)"
	case Int4:
		sym := !opt.Asymmetric
		m.Scheme.BlockSize, m.Scheme.Symmetric = opt.blockSize(), &sym
		m.Scheme.NibbleOrder = "low nibble first (MatMulNBits)"
		m.Scheme.Method = opt.method()
	case NF4:
		m.Scheme.BlockSize, m.Scheme.DoubleQuant = opt.blockSize(), opt.DoubleQuant
		m.Scheme.Method = opt.method()
		m.Scheme.NibbleOrder = "high nibble first (bitsandbytes)"
	}
	hs, err := srcHash()
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		m.Sources = append(m.Sources, h)
		m.Totals.BytesIn += h.Size
	}
	minSQNR := math.Inf(1)
	for _, it := range items {
		r := it.rec
		m.Tensors = append(m.Tensors, r)
		m.Totals.TensorsIn++
		m.Totals.TensorsOut += len(it.outs)
		if isFloat(it.src.DType) {
			m.Totals.Params += it.src.NumElements()
		}
		switch it.scheme {
		case SchemeInt8, SchemeInt8Ch, SchemeInt4, SchemeNF4:
			m.Totals.QuantizedParams += it.src.NumElements()
		}
		if it.scheme == SchemeFP16 {
			m.Totals.FP16Overflow += r.Overflow
		}
		if r.Error != nil && r.Error.SQNRdB != nil && *r.Error.SQNRdB < minSQNR {
			minSQNR = *r.Error.SQNRdB
			m.Totals.WorstTensor = r.Name
		}
	}
	if !math.IsInf(minSQNR, 1) {
		m.Totals.MinSQNRdB = &minSQNR
	}
	files, err := manifest.Scan(dir)
	if err != nil {
		return nil, err
	}
	m.Files = files
	for _, f := range files {
		if strings.HasSuffix(f.Path, ".safetensors") {
			m.Totals.BytesOut += f.Size
		}
	}
	if m.Totals.BytesIn > 0 {
		m.Totals.Ratio = float64(m.Totals.BytesOut) / float64(m.Totals.BytesIn)
	}
	if m.Totals.Params > 0 {
		m.Totals.BitsPerParam = float64(m.Totals.BytesOut) * 8 / float64(m.Totals.Params)
	}
	return m, nil
}

func usage(err error) error { return usageErr{err} }

type usageErr struct{ error }

func (u usageErr) Unwrap() error { return u.error }

// FaultClass makes option mistakes exit 2.
func (u usageErr) FaultClass() fault.Class { return fault.Usage }

// IsUsage reports whether err is an options mistake (exit 2).
func IsUsage(err error) bool {
	var u usageErr
	return errors.As(err, &u)
}

// hashSources starts hashing files in the background and returns a function
// that waits for the result.
func hashSources(ctx context.Context, files []string) func() ([]manifest.File, error) {
	type result struct {
		hs  []manifest.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		for _, f := range files {
			if ctx.Err() != nil {
				r.err = ctx.Err()
				break
			}
			h, err := manifest.HashFile(f)
			if err != nil {
				r.err = err
				break
			}
			r.hs = append(r.hs, h)
		}
		ch <- r
	}()
	return func() ([]manifest.File, error) {
		r := <-ch
		return r.hs, r.err
	}
}

// outputErr classifies a failure to create the output directory: an
// occupied -o is a usage mistake (exit 2), anything else (permissions, a
// full disk) is reported as it is.
func outputErr(err error) error {
	if errors.Is(err, atomicfile.ErrNotEmpty) || errors.Is(err, atomicfile.ErrNotDir) {
		return fmt.Errorf("%w: %v", ErrOutputExists, err)
	}
	return err
}
