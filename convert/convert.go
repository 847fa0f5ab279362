package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/hub"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
	"github.com/quantpack/quantpack/quant"
	"golang.org/x/sync/errgroup"
)

// Options are convert's flags.
type Options struct {
	Precision   Precision
	BlockSize   int      // 0: DefaultInt4Block (int4BlockFor per tensor) or DefaultNF4Block (see withDefaults)
	DoubleQuant Switch   // nf4: quantize the absmax values too (default on)
	Asymmetric  bool     // int4: min/max with zero points instead of symmetric
	Keep        []string // globs of tensor names to keep float
	RestDType   string   // fp32|fp16|bf16 for tensors that stay float; "" = DefaultRestDType
	Threads     int      // 0: runtime.NumCPU()
	Generic     bool     // allow an architecture quantpack does not know
	ShardBytes  int64    // 0: DefaultShardBytes
	NoStats     bool     // skip the per-tensor error statistics
	// Hub records where a checkpoint resolved from a Hub id came from
	// (hub.Resolve); it goes into quantpack.json and the model card.
	Hub *hub.Source
	// FailOnNonFinite makes a NaN or ±Inf in any tensor's source or output
	// an error (ErrNonFinite) and writes nothing; without it they are
	// counted in the manifest and reported.
	FailOnNonFinite bool
	// DequantizeInput accepts an already-quantized input: its weights are
	// dequantized to float32 (in a temporary checkpoint beside the output)
	// and converted from there, and the manifest says so ("dequantized").
	// Without it such an input is ErrQuantizedInput.
	DequantizeInput bool
	// Overrides sets the precision of single quantizable tensors (Linear
	// and convolution weights, by source name) against Precision: the
	// mixed artifacts of --precision auto. Other tensors ignore it.
	Overrides map[string]Precision
	// Auto, when set, is recorded in the manifest ("auto").
	Auto *AutoRecord

	// Method chooses the int4/nf4 block scales: "" or rtn, mse, hqq (int4
	// only; implies Asymmetric), awq (calibrated input scaling, awq.go).
	// See quant.Method.
	Method quant.Method
	// AWQBase is the block method under awq ("": DefaultAWQBaseInt4 or
	// DefaultAWQBaseNF4); Calib its calibration input (required).
	AWQBase quant.Method
	Calib   *Calibration
	// awq is the plan of an awq conversion (set by convertInto);
	// awqExplicitMul (export's own conversion) scales the Linears nothing
	// can absorb too, and awqOut receives their 1/s for the graph's Mul.
	awq            *awqPlan
	awqExplicitMul bool
	awqOut         *awqOutput
	// Progress, when set, is called after each tensor with bytes of input
	// done and the total. It may be called from several goroutines.
	Progress func(done, total int64)
	// SourceHashes, when set, are the checkpoint files' sha256 sums as the
	// caller already took them (study hashes each checkpoint once); used
	// when they match the files' names and sizes (knownHashes).
	SourceHashes []manifest.File
	// blockDefault: BlockSize was not given but filled in by withDefaults
	// (int4 then picks each tensor's block by int4BlockFor).
	blockDefault bool
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

// Validate reports option mistakes (usage errors) without doing any work, so
// that callers can check flags before slow preparation such as a download.
func (o Options) Validate() error { return o.validate() }

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
			if !validInt4Block(int64(bs)) {
				return usage(fmt.Errorf("--block-size %d: int4 wants a power of two from %d to %d", bs, minInt4Block, maxInt4Block))
			}
		case NF4:
			if !validNF4Block(int64(bs)) {
				return usage(fmt.Errorf("--block-size %d: nf4 wants a power of two from %d to %d", bs, minNF4Block, maxNF4Block))
			}
		default:
			return usage(fmt.Errorf("--block-size applies to int4 and nf4 only"))
		}
	}
	if err := o.validateMethod(); err != nil {
		return err
	}
	if o.DoubleQuant == SwitchOn && o.Precision != NF4 {
		return usage(fmt.Errorf("--double-quant applies to nf4 only"))
	}
	if o.Threads < 0 {
		return usage(fmt.Errorf("--threads %d: want ≥ 0", o.Threads))
	}
	if o.ShardBytes < 0 {
		return usage(fmt.Errorf("--shard-bytes %d: want > 0 (or unset for %d)", o.ShardBytes, int64(DefaultShardBytes)))
	}
	if o.Asymmetric && o.Precision != Int4 {
		return usage(fmt.Errorf("--asymmetric applies to int4 only, not %s", o.Precision))
	}
	if err := o.validateOverrides(); err != nil {
		return usage(err)
	}
	return ValidateGlobs(o.Keep)
}

// testHookBeforeCommit runs just before Convert and Export commit their
// output; tests use it to land a "signal" after all the work is done.
var testHookBeforeCommit = func() {}

// Source is an opened checkpoint with its config and architecture.
type Source struct {
	Path   string
	Dir    string // the directory holding config.json, or "" for a bare file
	Ckpt   *safetensors.Checkpoint
	Config *Config // nil for a bare .safetensors file
	Arch   *Arch   // nil when unknown and allowed (generic policy)

	// dequantized is set when this is a float32 reconstruction of a
	// quantized input (Options.DequantizeInput); hashFiles then names the
	// input's files, which the manifest's sources describe.
	dequantized *Dequantized
	hashFiles   []string
}

// OpenSource opens a model directory or a single .safetensors file. An
// unknown architecture is an error unless generic is set; an
// already-quantized checkpoint is ErrQuantizedInput.
func OpenSource(path string, generic bool) (*Source, error) {
	return openSource(path, generic, false)
}

// openSource is OpenSource; allowQuantized accepts a quantized checkpoint
// (to be dequantized first).
func openSource(path string, generic, allowQuantized bool) (*Source, error) {
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
	if allowQuantized {
		return s, nil
	}
	if err := refuseQuantized(path, s.Ckpt); err != nil {
		s.Ckpt.Close()
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
	opt = opt.withDefaults()
	s, err := openSource(src, opt.Generic, opt.DequantizeInput)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if opt.DequantizeInput {
		if found, _ := QuantSchemes(s.Ckpt); len(found) > 0 {
			ds, cleanup, err := dequantizeSource(ctx, s, out, opt.Generic)
			if err != nil {
				return nil, err
			}
			defer cleanup()
			s = ds
		}
	}
	// Check the tensors against config.json before writing anything, as
	// export does; convert keeps tensors the config does not use.
	if _, err := validateTensors(s.Arch, s.Config, newWeights(s.Path, s.Ckpt, nil)); err != nil {
		return nil, err
	}
	dir, err := atomicfile.CreateDir(out)
	if err != nil {
		return nil, outputErr(err)
	}
	defer dir.Abort()
	m, err := convertInto(ctx, s, dir.Tmp(), opt)
	if err != nil {
		return nil, err
	}
	// The commit point is the last cancellation check: a signal before it
	// means no output and exit 130, never a whole artifact with exit 0.
	testHookBeforeCommit()
	if err := dir.CommitContext(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func convertInto(ctx context.Context, s *Source, dir string, opt Options) (*Manifest, error) {
	items, err := planAll(s, &opt)
	if err != nil {
		return nil, err
	}
	if opt.awq, err = planAWQ(ctx, s, items, &opt); err != nil {
		return nil, err
	}
	// A failed worker returns from here: cancelling stops the hashing too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Hash the source files while the workers quantize: the hash is one
	// sequential pass over the whole checkpoint, and overlapping it with the
	// workers' reads and writes hides most of its cost.
	hashFiles := s.Ckpt.Files()
	if s.hashFiles != nil {
		hashFiles = s.hashFiles
	}
	srcHash := sourceHashes(ctx, hashFiles, opt.SourceHashes)
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
	if opt.FailOnNonFinite {
		if err := nonFiniteErr(s.Path, items); err != nil {
			return nil, err
		}
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
	if m.Files, err = addCard(dir, m.Files, convertCard(s, m)); err != nil {
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
		it := &item{src: e, role: role, scheme: SchemeFor(s.Arch, role, opt.precisionOf(e.Name, role), rest)}
		if err := planItem(it, opt); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		it.rec = &TensorRecord{Name: e.Name, Role: role, Scheme: it.scheme, DType: string(e.DType),
			Shape: append([]int64{}, e.Shape...), BytesIn: e.Size}
		if it.rec.Shape == nil {
			it.rec.Shape = []int64{}
		}
		if it.scheme == SchemeInt4 || it.scheme == SchemeNF4 {
			it.rec.BlockSize = int(it.geom.Block)
		}
		for _, o := range it.outs {
			if prev, dup := seen[o.Name]; dup {
				return nil, fmt.Errorf("%w: output tensor %q of %q collides with one made from %q",
					ErrUnsupportedLayout, o.Name, e.Name, prev)
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
	threads := opt.withDefaults().Threads
	var total int64
	for _, it := range items {
		total += it.src.Size
	}
	// Largest first, so the last worker is not left with a huge tensor.
	order := make([]*item, len(items))
	copy(order, items)
	sort.SliceStable(order, func(i, j int) bool { return order[i].src.Size > order[j].src.Size })
	// At most threads items run at once, so a free scratch is always
	// waiting: each running item borrows one and its buffers are reused.
	scratches := make(chan *scratch, threads)
	for range threads {
		scratches <- new(scratch)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(threads)
	var done atomic.Int64
	for _, it := range order {
		if gctx.Err() != nil {
			break // a worker failed or ctx was cancelled
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			sc := <-scratches
			defer func() { scratches <- sc }()
			if err := processItem(it, ws, sc, opt); err != nil {
				return err
			}
			d := done.Add(it.src.Size)
			if opt.Progress != nil {
				opt.Progress(d, total)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
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
	m.Dequantized = s.dequantized
	m.Scheme = SchemeParams{RestDType: opt.rest(), Keep: opt.Keep, Overrides: opt.Overrides}
	m.Auto = opt.Auto
	switch opt.Precision {
	case Int8:
		m.Scheme.Int8 = "rowwise absmax (bitsandbytes LLM.int8: w = q*SCB/127)"
	case Int4:
		sym := !opt.Asymmetric
		m.Scheme.BlockSize, m.Scheme.Symmetric = opt.blockSize(), &sym
		m.Scheme.BlockPerTensor = blocksVary(items, opt)
		m.Scheme.NibbleOrder = "low nibble first (MatMulNBits)"
		m.Scheme.Method = opt.method()
	case NF4:
		m.Scheme.BlockSize, m.Scheme.DoubleQuant = opt.blockSize(), opt.doubleQuant()
		m.Scheme.Method = opt.method()
		m.Scheme.NibbleOrder = "high nibble first (bitsandbytes)"
	}
	if opt.awq != nil {
		m.Scheme.AWQ = opt.awq.scheme
	}
	hs, err := srcHash()
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		m.Sources = append(m.Sources, h)
		m.Totals.BytesIn += h.Size
		// The bytes read must be the bytes the Hub vouched for: a cache
		// blob changed since it was verified is corrupt input.
		if f := opt.Hub.File(h.Path); f != nil && f.SHA256 != h.SHA256 {
			return nil, fmt.Errorf("%w: %s of %s@%s has sha256 %s in the cache, the Hub says %s (delete the blob and run again)",
				ErrHubMismatch, h.Path, opt.Hub.Repo, opt.Hub.Commit, h.SHA256, f.SHA256)
		}
	}
	m.Hub = opt.Hub
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
		if r.NonFinite.any() {
			m.Totals.NonFiniteTensors++
			if m.Totals.NonFinite == nil {
				m.Totals.NonFinite = &NonFinite{}
				m.Totals.WorstTensor = r.Name // unbounded error: worse than any SQNR
			}
			m.Totals.NonFinite.Source.Add(r.NonFinite.Source)
			m.Totals.NonFinite.Output.Add(r.NonFinite.Output)
			continue
		}
		if m.Totals.NonFinite == nil && r.Error != nil && r.Error.SQNRdB != nil && *r.Error.SQNRdB < minSQNR {
			minSQNR = *r.Error.SQNRdB
			m.Totals.WorstTensor = r.Name
		}
	}
	if !math.IsInf(minSQNR, 1) && m.Totals.NonFinite == nil {
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

// usage makes an option mistake exit 2.
func usage(err error) error { return fault.WithClass(fault.Usage, err) }

// outputErr classifies a failure to create the output directory: an
// occupied -o is a usage mistake (exit 2), anything else (permissions, a
// full disk) is reported as it is.
func outputErr(err error) error {
	if errors.Is(err, atomicfile.ErrNotEmpty) || errors.Is(err, atomicfile.ErrNotDir) {
		return fmt.Errorf("%w: %v; choose a new or empty directory", ErrOutputExists, err)
	}
	return err
}
