package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/version"
)

// Variants builds ONNX graphs of one checkpoint in memory, each quantizable
// tensor at a precision of the caller's choice. The checkpoint is converted
// once per precision (into a temporary folder removed by Close); a variant
// then takes each tensor's stored bytes from the conversion of its
// precision, so building one costs a graph encoding — no conversion and no
// file per variant. The graphs are exactly what export would write for the
// same choice (same builder, same codes and scales). Their large
// initializers are external data in one file shared by every variant
// (DataDir; see variants_pool.go), so a graph is small whatever the
// model's size. Safe for concurrent Build calls.
type Variants struct {
	src    *exportSource
	arts   map[Precision]*variantSource
	fp32   *variantSource
	tmp    *atomicfile.Dir
	layers []Layer
	gopt   graphOptions
	// pool holds the large initializers (nil: every initializer inline).
	pool *initPool
}

// variantSource is one conversion (or the checkpoint) with a record per
// source tensor.
type variantSource struct {
	ckpt *safetensors.Checkpoint
	recs map[string]*TensorRecord
	// bytes per source tensor as stored (for sizes)
}

// Layer is one quantizable tensor (a Linear or convolution weight) of a
// Variants source.
type Layer struct {
	Name   string  `json:"name"`
	Role   Role    `json:"role"`
	Shape  []int64 `json:"shape"`
	Params int64   `json:"params"`
	// Schemes and Bytes give the tensor's scheme and stored bytes (codes
	// and scales together) at each precision of the Variants.
	Schemes map[Precision]string `json:"schemes"`
	Bytes   map[Precision]int64  `json:"bytes"`
}

// VariantOptions configure OpenVariants.
type VariantOptions struct {
	// Precisions to convert to (int8, int4, nf4, fp16); FP32, the
	// checkpoint, is always available.
	Precisions []Precision
	// Convert holds block size, double quant, rest dtype, ... (Precision
	// is set per conversion).
	Convert Options
	// Export holds the graph form (int8 mode, int4 accuracy level, opset,
	// image size).
	Export ExportOptions
	// TmpDir holds the conversions; "" means os.TempDir().
	TmpDir string
	// ExternalThreshold: initializers of at least this many bytes are
	// written once to a data file shared by every variant graph and
	// referenced as external data. 0 means 1024 bytes (export's
	// threshold); a negative value keeps every initializer inline in the
	// graph bytes (the model must then stay under protobuf's 2 GiB), the
	// reference the external path is checked against.
	ExternalThreshold int64
}

// OpenVariants converts src once per precision and lists its quantizable
// tensors in network order (the order the graph builder reaches them).
func OpenVariants(ctx context.Context, src string, opt VariantOptions) (*Variants, error) {
	eo := opt.Export
	if err := eo.validate(); err != nil {
		return nil, err
	}
	eo = eo.withDefaults()
	s, err := openExportSource(src)
	if err != nil {
		return nil, err
	}
	if s.artifact != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s is a quantpack artifact; give the original checkpoint", ErrUnsupported, src)
	}
	v := &Variants{src: s, arts: map[Precision]*variantSource{}}
	fail := func(err error) (*Variants, error) { v.Close(); return nil, err }
	if err := s.checkTensors(eo.AllowUnused); err != nil {
		return fail(err)
	}
	h, w, _, err := s.imageSize(eo.ImageSize)
	if err != nil {
		return fail(err)
	}
	v.gopt = graphOptions{Precision: ExportFP32, Int8Mode: eo.Int8Mode, Opset: eo.Opset, Plain: eo.Plain,
		Int4Accuracy: eo.Int4Accuracy, Height: h, Width: w}
	v.fp32 = &variantSource{ckpt: s.ckpt, recs: map[string]*TensorRecord{}}
	for _, e := range s.ckpt.Tensors() {
		_, scheme, err := s.w.info(e.Name)
		if err != nil {
			return fail(err)
		}
		v.fp32.recs[e.Name] = &TensorRecord{Name: e.Name, Scheme: scheme, DType: string(e.DType), Shape: e.Shape,
			BytesIn: e.Size, BytesOut: e.Size, Outputs: []string{e.Name}}
	}
	tmpRoot := opt.TmpDir
	if tmpRoot == "" {
		tmpRoot = os.TempDir()
	}
	if v.tmp, err = atomicfile.CreateDir(filepath.Join(tmpRoot, fmt.Sprintf("quantpack-variants-%d", os.Getpid()))); err != nil {
		return fail(err)
	}
	for _, p := range opt.Precisions {
		if p == FP32 || v.arts[p] != nil {
			continue
		}
		co := opt.Convert
		co.Precision, co.NoStats, co.Overrides, co.Auto, co.Progress = p, true, nil, nil, nil
		if p != NF4 {
			co.DoubleQuant = SwitchOff
		}
		if p != Int4 && p != NF4 {
			co.BlockSize = 0
		}
		dir := v.tmp.Join(string(p))
		m, err := Convert(ctx, src, dir, co)
		if err != nil {
			return fail(err)
		}
		ck, err := safetensors.OpenCheckpoint(dir)
		if err != nil {
			return fail(err)
		}
		vs := &variantSource{ckpt: ck, recs: map[string]*TensorRecord{}}
		for _, r := range m.Tensors {
			vs.recs[r.Name] = r
		}
		v.arts[p] = vs
	}
	if opt.ExternalThreshold >= 0 {
		th := opt.ExternalThreshold
		if th == 0 {
			th = variantPoolThreshold
		}
		if v.pool, err = newInitPool(v.tmp.Tmp(), th); err != nil {
			return fail(err)
		}
	}
	if err := v.listLayers(); err != nil {
		return fail(err)
	}
	if err := v.fillPool(ctx, opt.Precisions); err != nil {
		return fail(err)
	}
	return v, nil
}

// fillPool writes every initializer of the graph with every layer at each
// precision into the pool, one graph at a time, before any variant runs
// (listLayers wrote the all-FP32 graph's): a variant then finds all of its
// initializers there, and concurrent Builds only read the pool.
func (v *Variants) fillPool(ctx context.Context, precs []Precision) error {
	if v.pool == nil {
		return nil
	}
	for _, p := range precs {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := v.uniformModel(p)
		if err != nil {
			return err
		}
		if err := v.pool.externalize(m); err != nil {
			return err
		}
	}
	return nil
}

// DataDir is the folder of the variant graphs' external data (ONNX
// Runtime's external-initializer folder for a model loaded from bytes); ""
// when every initializer is inline.
func (v *Variants) DataDir() string {
	if v.pool == nil {
		return ""
	}
	return v.pool.dir
}

// DataBytes is the size of the variant graphs' shared data file.
func (v *Variants) DataBytes() int64 {
	if v.pool == nil {
		return 0
	}
	return v.pool.size()
}

// listLayers builds the FP32 graph once, tracing the order in which the
// builder asks for tensors, and keeps the quantizable ones.
func (v *Variants) listLayers() error {
	var order []string
	seen := map[string]bool{}
	trace := func(name string) {
		if !seen[name] {
			seen[name] = true
			order = append(order, name)
		}
	}
	w := v.compose(nil, FP32)
	w.trace = trace
	if _, err := v.build(w); err != nil {
		return err
	}
	for _, name := range order {
		e, ok := v.src.ckpt.Lookup(name)
		if !ok {
			continue
		}
		role := RoleOf(v.src.arch, nil, e.TensorInfo)
		if role != RoleLinear && !(role == RoleConv && v.src.arch.quantizeConvs()) {
			continue
		}
		l := Layer{Name: name, Role: role, Shape: slices.Clone(e.Shape), Params: e.NumElements(),
			Schemes: map[Precision]string{FP32: SchemeFP32}, Bytes: map[Precision]int64{FP32: e.NumElements() * 4}}
		for p, a := range v.arts {
			if r := a.recs[name]; r != nil {
				l.Schemes[p], l.Bytes[p] = r.Scheme, r.BytesOut
			}
		}
		v.layers = append(v.layers, l)
	}
	return nil
}

// Layers returns the quantizable tensors in network order.
func (v *Variants) Layers() []Layer { return v.layers }

// Dir is the checkpoint directory (its preprocessor_config.json and
// config.json describe the inputs).
func (v *Variants) Dir() string { return v.src.dir }

// Architecture is the checkpoint's architecture name.
func (v *Variants) Architecture() string { return v.src.arch.Name }

// source returns the conversion at p.
func (v *Variants) source(p Precision) (*variantSource, error) {
	if p == FP32 {
		return v.fp32, nil
	}
	a := v.arts[p]
	if a == nil {
		return nil, fmt.Errorf("convert: internal: variants have no %s conversion", p)
	}
	return a, nil
}

// compose makes the weights of a variant: tensors named in assign from the
// conversion at their precision, every other tensor from rest's.
func (v *Variants) compose(assign map[string]Precision, rest Precision) *weights {
	rs, err := v.source(rest)
	if err != nil {
		rs = v.fp32
	}
	w := &weights{path: v.src.dir, ckpt: rs.ckpt, recs: map[string]*TensorRecord{}, from: map[string]*safetensors.Checkpoint{}}
	for name, r := range rs.recs {
		src := rs
		if p, ok := assign[name]; ok {
			if a, err := v.source(p); err == nil && a.recs[name] != nil {
				src, r = a, a.recs[name]
			}
		}
		w.recs[name] = r
		for _, o := range r.Outputs {
			w.from[o] = src.ckpt
		}
	}
	return w
}

// Build returns the ONNX model of the variant in which each tensor named in
// assign has that precision and every other tensor rest's (FP32: the
// checkpoint as it is); its large initializers are external data in
// DataDir. It fails when assign names a precision the Variants were not
// opened with.
func (v *Variants) Build(assign map[string]Precision, rest Precision) ([]byte, error) {
	for name, p := range assign {
		if _, err := v.source(p); err != nil {
			return nil, fmt.Errorf("%w (tensor %q)", err, name)
		}
	}
	if _, err := v.source(rest); err != nil {
		return nil, err
	}
	return v.build(v.compose(assign, rest))
}

func (v *Variants) build(w *weights) ([]byte, error) {
	gopt := v.gopt
	m, err := buildModel(v.src, w, &gopt)
	if err != nil {
		return nil, err
	}
	return v.encode(m)
}

// encode moves m's large initializers to the pool and encodes the rest.
func (v *Variants) encode(m *onnx.Model) ([]byte, error) {
	if v.pool != nil {
		if err := v.pool.externalize(m); err != nil {
			return nil, err
		}
	}
	return m.Marshal()
}

// buildInMemory builds s's graph from w and encodes it with every
// initializer inline.
func buildInMemory(s *exportSource, w *weights, gopt *graphOptions) ([]byte, error) {
	m, err := buildModel(s, w, gopt)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// uniformModel is the graph with every layer at precision p (the rest as
// the source has it).
func (v *Variants) uniformModel(p Precision) (*onnx.Model, error) {
	assign := map[string]Precision{}
	for _, l := range v.layers {
		assign[l.Name] = p
	}
	gopt := v.gopt
	return buildModel(v.src, v.compose(assign, FP32), &gopt)
}

// FileBytes returns, per layer, the bytes its initializers take in an
// export with every layer at precision p, laid out as export writes them:
// inline below export's external threshold, else padded to the data file's
// alignment. (Small layers can cost more at int4 than at int8 this way:
// the alignment, not the bits, decides.)
func (v *Variants) FileBytes(p Precision) (map[string]int64, error) {
	m, err := v.uniformModel(p)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, l := range v.layers {
		prefix := prefixOf(l.Name) + "."
		for _, t := range m.Graph.Initializers {
			if len(t.Name) < len(prefix) || t.Name[:len(prefix)] != prefix {
				continue
			}
			n, err := t.DataSize()
			if err != nil {
				return nil, err
			}
			if n >= exportThreshold {
				n = (n + onnx.DefaultAlign - 1) / onnx.DefaultAlign * onnx.DefaultAlign
			}
			out[l.Name] += n
		}
	}
	return out, nil
}

func buildModel(s *exportSource, w *weights, gopt *graphOptions) (*onnx.Model, error) {
	b := newBuilder(s.cfg, s.arch, w, gopt)
	if err := s.arch.graph()(b); err != nil {
		return nil, err
	}
	if b.err != nil {
		return nil, b.err
	}
	model := &onnx.Model{IRVersion: irVersion(gopt.Opset), ProducerName: "quantpack", ProducerVersion: version.Version,
		Graph: b.g, Opsets: []*onnx.OpsetID{onnx.Opset("", int64(gopt.Opset))}}
	if b.usesDomain(msDomain) {
		model.Opsets = append(model.Opsets, onnx.Opset(msDomain, 1))
	}
	return model, nil
}

// ArtifactGraph returns, in memory, the fp32-form graph export would write
// for the convert artifact in dir (quantized layers as their contrib
// operators, every scheme the artifact mixes included). With dataDir (an
// existing folder) its large initializers are written to a data file there
// and referenced as external data, so artifacts past protobuf's 2 GiB work
// too; open the graph with dataDir as its external-data folder.
func ArtifactGraph(dir string, eo ExportOptions, dataDir string) ([]byte, error) {
	if err := eo.validate(); err != nil {
		return nil, err
	}
	eo = eo.withDefaults()
	s, err := openExportSource(dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.checkTensors(eo.AllowUnused); err != nil {
		return nil, err
	}
	h, w, _, err := s.imageSize(eo.ImageSize)
	if err != nil {
		return nil, err
	}
	gopt := graphOptions{Precision: ExportFP32, Int8Mode: eo.Int8Mode, Opset: eo.Opset, Plain: eo.Plain,
		Int4Accuracy: eo.Int4Accuracy, Height: h, Width: w}
	if dataDir == "" {
		return buildInMemory(s, s.w, &gopt)
	}
	m, err := buildModel(s, s.w, &gopt)
	if err != nil {
		return nil, err
	}
	pool, err := newInitPool(dataDir, variantPoolThreshold)
	if err != nil {
		return nil, err
	}
	defer pool.close()
	if err := pool.externalize(m); err != nil {
		return nil, err
	}
	return m.Marshal()
}

// WeightBytes is the stored size of a variant's tensors: those in assign at
// their precision, the rest at rest's.
func (v *Variants) WeightBytes(assign map[string]Precision, rest Precision) int64 {
	var n int64
	for _, r := range v.compose(assign, rest).recs {
		n += r.BytesOut
	}
	return n
}

// Close removes the conversions and the shared data file.
func (v *Variants) Close() error {
	if v.pool != nil {
		v.pool.close()
	}
	for _, a := range v.arts {
		a.ckpt.Close()
	}
	if v.tmp != nil {
		v.tmp.Abort()
	}
	if v.src != nil {
		return v.src.Close()
	}
	return nil
}
