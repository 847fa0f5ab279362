package convert

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/quant"
)

// GraphBuilder builds the ONNX graph of one architecture. It reads weights
// through b (which hands back what the source holds: float tensors or a
// quantized Linear's codes and scales), adds nodes with b's helpers and
// declares the outputs with b.output. The graph input, pixel_values, is
// b.pixels().
type GraphBuilder func(b *builder) error

// msDomain is ONNX Runtime's contrib operator domain.
const msDomain = "com.microsoft"

// builder accumulates one ONNX graph. Values are named strings; every helper
// returns the name of the value it produced. Helpers record the first error
// in b.err and turn into no-ops afterwards, so builders read like the
// modeling code and check b.err once (see errf).
type builder struct {
	cfg  *Config
	arch *Arch
	w    *weights
	opt  *graphOptions
	g    *onnx.Graph

	// dt is the element type of activations and float initializers:
	// onnx.Float, or onnx.Float16 for fp16 graphs.
	dt onnx.DataType

	names  map[string]int // base name → uses, for unique value names
	ops    map[string]int // "op" or "domain.op" → count
	inits  map[string]bool
	consts map[string]string // cache of small constants by key
	scope  string
	err    error
	input  string // pixel_values, cast to dt
}

// graphOptions are the export choices that shape the graph.
type graphOptions struct {
	Precision     Precision
	Int8Mode      string // Int8Dynamic or Int8QDQ
	Opset         int
	Plain         bool        // only standard ONNX ops (no com.microsoft fusions)
	Int4Accuracy  int         // MatMulNBits accuracy_level
	Height, Width int         // input image size
	auto          *AutoRecord // recorded in the manifest
	// awqMul: Linear weight → 1/s of an explicit Mul before it (awq).
	awqMul map[string][]float32
}

func newBuilder(cfg *Config, arch *Arch, w *weights, opt *graphOptions) *builder {
	b := &builder{cfg: cfg, arch: arch, w: w, opt: opt, g: &onnx.Graph{Name: arch.Name},
		dt: onnx.Float, names: map[string]int{}, ops: map[string]int{}, inits: map[string]bool{},
		consts: map[string]string{}}
	if opt.Precision == ExportFP16 {
		b.dt = onnx.Float16
	}
	return b
}

// errf records an error (the first one wins) and returns it.
func (b *builder) errf(err error) error {
	if b.err == nil && err != nil {
		b.err = err
	}
	return b.err
}

// in runs fn with names prefixed by scope (for readable node names in
// profiles and error messages).
func (b *builder) in(scope string, fn func()) {
	old := b.scope
	if old != "" {
		scope = old + "/" + scope
	}
	b.scope = scope
	fn()
	b.scope = old
}

// unique returns base, or base_N when base was used before.
func (b *builder) unique(base string) string {
	n := b.names[base]
	b.names[base] = n + 1
	if n == 0 {
		return base
	}
	return base + "_" + strconv.Itoa(n)
}

func (b *builder) valueName(op string) string {
	if b.scope == "" {
		return b.unique(op)
	}
	return b.unique(b.scope + "/" + op)
}

// node adds one node of the default domain with one output and returns the
// output's name.
func (b *builder) node(op string, inputs []string, attrs ...*onnx.Attribute) string {
	return b.nodeIn("", op, inputs, 1, attrs...)[0]
}

// msNode adds a com.microsoft contrib node with one output.
func (b *builder) msNode(op string, inputs []string, attrs ...*onnx.Attribute) string {
	return b.nodeIn(msDomain, op, inputs, 1, attrs...)[0]
}

// nodeIn adds a node of domain with nout outputs.
func (b *builder) nodeIn(domain, op string, inputs []string, nout int, attrs ...*onnx.Attribute) []string {
	outs := make([]string, nout)
	base := b.valueName(op)
	for i := range outs {
		outs[i] = base
		if i > 0 {
			outs[i] = base + ":" + strconv.Itoa(i)
		}
	}
	if b.err != nil {
		return outs
	}
	n := b.g.AddNode(op, inputs, outs, attrs...)
	n.Domain = domain
	n.Name = base
	key := op
	if domain != "" {
		key = domain + "." + op
	}
	b.ops[key]++
	return outs
}

// addInit adds an initializer; names must be unique.
func (b *builder) addInit(t *onnx.Tensor) string {
	if b.err != nil {
		return t.Name
	}
	if b.inits[t.Name] {
		b.errf(fmt.Errorf("convert: internal: initializer %q added twice", t.Name))
		return t.Name
	}
	b.inits[t.Name] = true
	b.names[t.Name]++
	b.g.Initializers = append(b.g.Initializers, t)
	return t.Name
}

// constF adds a float constant in the compute dtype.
func (b *builder) constF(name string, dims []int64, v []float32) string {
	return b.addInit(floatTensor(b.unique(name), b.dt, dims, v))
}

// scalarF returns a shared 0-dim constant of the compute dtype.
func (b *builder) scalarF(v float32) string {
	key := "f" + strconv.FormatUint(uint64(math.Float32bits(v)), 16) + b.dt.String()
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.addInit(floatTensor(b.unique("const_"+strconv.FormatFloat(float64(v), 'g', 8, 32)), b.dt, nil, []float32{v}))
	b.consts[key] = n
	return n
}

// constI64 returns a shared 1-D INT64 constant (shapes, axes, indices).
func (b *builder) constI64(v ...int64) string {
	key := "i" + fmt.Sprint(v)
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.addInit(onnx.TensorI64(b.unique("shape_"+joinInts(v)), []int64{int64(len(v))}, v))
	b.consts[key] = n
	return n
}

// scalarI64 returns a shared 0-dim INT64 constant.
func (b *builder) scalarI64(v int64) string {
	key := "s" + strconv.FormatInt(v, 10)
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.addInit(onnx.ScalarI64(b.unique("index_"+strconv.FormatInt(v, 10)), v))
	b.consts[key] = n
	return n
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strings.ReplaceAll(strconv.FormatInt(x, 10), "-", "m")
	}
	return strings.Join(s, "x")
}

// floatTensor encodes v as FLOAT or FLOAT16.
func floatTensor(name string, dt onnx.DataType, dims []int64, v []float32) *onnx.Tensor {
	if dt == onnx.Float16 {
		h := make([]uint16, len(v))
		quant.F32ToF16(h, v)
		return onnx.TensorF16(name, dims, h)
	}
	return onnx.TensorF32(name, dims, v)
}

// input declares the graph input pixel_values, float32 [batch, C, H, W],
// and returns it in the compute dtype.
func (b *builder) pixels(channels int) string {
	if b.input != "" {
		return b.input
	}
	b.g.Inputs = append(b.g.Inputs, onnx.TensorValue("pixel_values", onnx.Float,
		onnx.Symbolic("batch"), onnx.Fixed(int64(channels)), onnx.Fixed(int64(b.opt.Height)), onnx.Fixed(int64(b.opt.Width))))
	b.names["pixel_values"]++
	b.input = "pixel_values"
	if b.dt != onnx.Float {
		b.input = b.cast("pixel_values", b.dt)
	}
	return b.input
}

// output declares a graph output called name (float32 always) with the
// given dims after the dynamic batch dimension.
func (b *builder) output(name, v string, dims ...int64) {
	shape := []onnx.Dim{onnx.Symbolic("batch")}
	for _, d := range dims {
		shape = append(shape, onnx.Fixed(d))
	}
	if b.err != nil {
		return
	}
	op := "Identity"
	var attrs []*onnx.Attribute
	if b.dt != onnx.Float {
		op = "Cast"
		attrs = append(attrs, onnx.AttrInt("to", int64(onnx.Float)))
	}
	n := b.g.AddNode(op, []string{v}, []string{name}, attrs...)
	n.Name = "output/" + name
	b.ops[op]++
	b.names[name]++
	b.g.Outputs = append(b.g.Outputs, onnx.TensorValue(name, onnx.Float, shape...))
}

// opsUsed returns a copy of the op counts (node count per operator type,
// contrib operators as "com.microsoft.Name"), for the manifest.
func (b *builder) opsUsed() map[string]int {
	out := make(map[string]int, len(b.ops))
	for k, v := range b.ops {
		out[k] = v
	}
	return out
}

// usesDomain reports whether any node is in domain.
func (b *builder) usesDomain(domain string) bool {
	for k := range b.ops {
		if strings.HasPrefix(k, domain+".") {
			return true
		}
	}
	return false
}
