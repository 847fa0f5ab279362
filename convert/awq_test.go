package convert

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// awqCalib calibrates on the first n images of the trained fixtures'
// calib/ with ONNX Runtime (one intra-op thread).
func awqCalib(t testing.TB, n int) *Calibration {
	t.Helper()
	orttest.Require(t)
	return &Calibration{Images: filepath.Join(testenv.Fixtures(t, "trained"), "calib"), Samples: n,
		Open: func(model []byte, dir string) (verify.Runner, error) {
			s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: 1, ExternalDataDir: dir})
			if err != nil {
				return nil, err
			}
			return s, nil
		}}
}

// withPreprocessor copies a reference checkpoint (which has no
// preprocessor_config.json) and adds a ViTImageProcessor-style one at the
// config's image size, so that awq can calibrate it on images.
func withPreprocessor(t testing.TB, model string) string {
	t.Helper()
	src := filepath.Join(fixtures(t), "reference", model)
	dst := filepath.Join(t.TempDir(), model)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cfg struct {
		ImageSize int `json:"image_size"`
	}
	b, _ := os.ReadFile(filepath.Join(src, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.ImageSize == 0 {
		t.Fatalf("%s: image_size: %v", model, err)
	}
	pre := map[string]any{"image_processor_type": "ViTImageProcessor", "do_resize": true, "resample": 2,
		"size": map[string]int{"height": cfg.ImageSize, "width": cfg.ImageSize}, "do_rescale": true, "rescale_factor": 1.0 / 255,
		"do_normalize": true, "image_mean": []float64{0.5, 0.5, 0.5}, "image_std": []float64{0.5, 0.5, 0.5}}
	pb, _ := json.Marshal(pre)
	if err := os.WriteFile(filepath.Join(dst, "preprocessor_config.json"), pb, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestAWQGroups checks the folding rules found in each family's FP32
// graph: q/k/v fold into the LayerNorm before attention, the MLP input into
// the LayerNorm after it, the attention output dense into the value rows,
// the MLP output dense nowhere (or an explicit Mul); every 4-bit Linear is
// in exactly one group.
func TestAWQGroups(t *testing.T) {
	for _, model := range []string{"vit", "deit-distilled", "dinov2", "beit", "mobilevit"} {
		for _, mul := range []bool{false, true} {
			s, err := OpenSource(filepath.Join(fixtures(t), "reference", model), false)
			if err != nil {
				t.Fatal(err)
			}
			opt := Options{Precision: Int4}
			items, err := planAll(s, &opt)
			if err != nil {
				t.Fatal(err)
			}
			es, err := openExportSource(s.Dir)
			if err != nil {
				t.Fatal(err)
			}
			h, w, _, _ := es.imageSize(0)
			m, err := buildModel(es, es.w, &graphOptions{Precision: FP32, Opset: DefaultOpset, Int4Accuracy: 4, Height: h, Width: w})
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*item{}
			four := 0
			for _, it := range items {
				byName[it.src.Name] = it
				if is4bit(it) {
					four++
				}
			}
			groups, err := awqGroups(m, byName, mul)
			es.Close()
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, g := range groups {
				for _, l := range g.linears {
					if seen[l] {
						t.Errorf("%s: %s in two groups", model, l)
					}
					seen[l] = true
				}
				first := g.linears[0]
				var want, into string
				layer := layerRE.FindString(first)
				switch {
				case strings.HasSuffix(first, ".attention.attention.query.weight"):
					want, into = awqFoldNorm, "layernorm_before"
					if model == "dinov2" {
						into = "norm1"
					}
					if len(g.linears) != 3 {
						t.Errorf("%s: q/k/v group %v", model, g.linears)
					}
				case strings.HasSuffix(first, ".attention.output.dense.weight"):
					want, into = awqFoldValue, "attention.attention.value.weight"
				case strings.HasSuffix(first, ".intermediate.dense.weight") || strings.HasSuffix(first, ".mlp.fc1.weight"):
					want, into = awqFoldNorm, "layernorm_after"
					if model == "dinov2" {
						into = "norm2"
					}
				case strings.HasSuffix(first, ".output.dense.weight") || strings.HasSuffix(first, ".mlp.fc2.weight"):
					want = awqFoldNone
					if mul {
						want = awqFoldMul
					}
				default:
					t.Errorf("%s: unexpected group %v", model, g.linears)
					continue
				}
				if g.fold != want || (into != "" && g.into != layer+into) {
					t.Errorf("%s: %s folds %s into %q, want %s into %q", model, first, g.fold, g.into, want, layer+into)
				}
			}
			if len(seen) != four || four == 0 {
				t.Errorf("%s: %d Linears grouped, %d are 4-bit", model, len(seen), four)
			}
		}
	}
}

// layerRE matches a transformer layer's prefix ("….layer.3.").
var layerRE = regexp.MustCompile(`^.*\.layer\.\d+\.`)

// TestAWQFoldExactFloat64: folding changes nothing before quantization.
// With random scales (0.2 to 5) folded as awqApply folds them (LayerNorm
// weight and bias divided, q/k/v columns multiplied, value rows and bias
// divided by the output dense's scales, its columns multiplied), the
// float64 forward of LayerNorm → q, k and of attention → output dense on
// the folded float32 weights equals the original's to ≤ 1e-6 relative
// (each folded weight carries one float32 rounding, 6e-8 relative).
func TestAWQFoldExactFloat64(t *testing.T) {
	s, err := OpenSource(filepath.Join(fixtures(t), "reference", "vit"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opt := Options{Precision: Int4}
	items, err := planAll(s, &opt)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*item{}
	for _, it := range items {
		byName[it.src.Name] = it
	}
	l := "vit.encoder.layer.0."
	ln, q, v, o := l+"layernorm_before", l+"attention.attention.query", l+"attention.attention.value", l+"attention.output.dense"
	r := rand.New(rand.NewPCG(5, 6))
	const hidden = 32
	scales := func() []float32 {
		v := make([]float32, hidden)
		for i := range v {
			v[i] = float32(math.Exp(r.Float64()*math.Log(25)) / 5)
		}
		return v
	}
	sQKV, sO := scales(), scales()
	opt.awq = &awqPlan{
		col:    map[string][]float32{q + ".weight": sQKV, v + ".weight": sQKV, o + ".weight": sO},
		rowDiv: map[string][]float32{v + ".weight": sO},
		div:    map[string][]float32{ln + ".weight": sQKV, ln + ".bias": sQKV, v + ".bias": sO},
	}
	orig, folded := map[string][]float64{}, map[string][]float64{}
	for _, name := range []string{ln + ".weight", ln + ".bias", q + ".weight", q + ".bias", v + ".weight", v + ".bias", o + ".weight", o + ".bias"} {
		it := byName[name]
		x, err := readFloat32(it.src)
		if err != nil {
			t.Fatal(err)
		}
		orig[name] = to64(x)
		undo, err := opt.awqApply(it, x)
		if err != nil {
			t.Fatal(err)
		}
		folded[name] = to64(x)
		if undo == nil && name != q+".bias" && name != o+".bias" {
			t.Errorf("%s untouched", name)
		}
	}
	const T = 6
	x := make([]float64, T*hidden)
	for i := range x {
		x[i] = r.NormFloat64() * 3
	}
	attn := make([]float64, T*T) // a row-stochastic attention matrix
	for i := 0; i < T; i++ {
		var sum float64
		for j := 0; j < T; j++ {
			attn[i*T+j] = r.Float64()
			sum += attn[i*T+j]
		}
		for j := 0; j < T; j++ {
			attn[i*T+j] /= sum
		}
	}
	forward := func(w map[string][]float64) (qo, out []float64) {
		h := layerNorm64(x, T, w[ln+".weight"], w[ln+".bias"], 1e-12) // the reference ViT config's ε
		qo = linear64(h, T, hidden, w[q+".weight"], w[q+".bias"])
		vv := linear64(h, T, hidden, w[v+".weight"], w[v+".bias"])
		ctx := make([]float64, T*hidden)
		for i := 0; i < T; i++ {
			for j := 0; j < T; j++ {
				for c := 0; c < hidden; c++ {
					ctx[i*hidden+c] += attn[i*T+j] * vv[j*hidden+c]
				}
			}
		}
		return qo, linear64(ctx, T, hidden, w[o+".weight"], w[o+".bias"])
	}
	q0, o0 := forward(orig)
	q1, o1 := forward(folded)
	for name, pair := range map[string][2][]float64{"query": {q0, q1}, "attention output": {o0, o1}} {
		var m, d float64
		for i := range pair[0] {
			m = math.Max(m, math.Abs(pair[0][i]))
			d = math.Max(d, math.Abs(pair[0][i]-pair[1][i]))
		}
		t.Logf("%s: folded vs original max |Δ| / max |y| = %.2g", name, d/m)
		if d > 1e-6*m {
			t.Errorf("%s: folded forward differs by %.3g relative", name, d/m)
		}
	}
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// linear64 is x [T, k] · Wᵀ + b with W [n, k] (n = len(b)).
func linear64(x []float64, T, k int, w, b []float64) []float64 {
	n := len(b)
	out := make([]float64, T*n)
	for i := 0; i < T; i++ {
		for o := 0; o < n; o++ {
			s := b[o]
			for j := 0; j < k; j++ {
				s += x[i*k+j] * w[o*k+j]
			}
			out[i*n+o] = s
		}
	}
	return out
}

// TestAWQExports converts with awq, exports, and runs the graph in ONNX
// Runtime (MatMulNBits with zero points, and MatMulBnb4 for nf4) against
// the float64 forward pass on the artifact's dequantized weights (the
// folded LayerNorms included): like TestMethodExports, to ≤ 1e-5 of the
// output scale. It also checks what the manifests record.
func TestAWQExports(t *testing.T) {
	cal := awqCalib(t, 16)
	for _, tc := range []struct {
		dir  string
		prec Precision
	}{
		{filepath.Join(testenv.Fixtures(t, "trained"), "vit-28"), Int4},
		{withPreprocessor(t, "dinov2"), Int4},
		{withPreprocessor(t, "deit-distilled"), NF4},
	} {
		name := filepath.Base(tc.dir) + "-" + string(tc.prec)
		art := filepath.Join(t.TempDir(), "a")
		m, err := Convert(context.Background(), tc.dir, art, Options{Precision: tc.prec, Method: quant.MethodAWQ, Calib: cal, BlockSize: 32})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a := m.Scheme.AWQ
		wantBase := DefaultAWQBaseInt4
		if tc.prec == NF4 {
			wantBase = DefaultAWQBaseNF4
		}
		if m.Scheme.Method != quant.MethodAWQ || a == nil || a.Base != wantBase || a.Calibration.Count != 16 || len(a.Calibration.SHA256) != 64 {
			t.Fatalf("%s: scheme %+v", name, m.Scheme)
		}
		if a.WeightedSQNRdB < a.BaseWeightedSQNRdB {
			t.Errorf("%s: weighted SQNR %.3f below the base's %.3f", name, a.WeightedSQNRdB, a.BaseWeightedSQNRdB)
		}
		t.Logf("%s: weighted SQNR %.2f dB (base %s %.2f dB)", name, a.WeightedSQNRdB, a.Base, a.BaseWeightedSQNRdB)
		for _, r := range m.Tensors {
			if (r.Scheme == SchemeInt4 || r.Scheme == SchemeNF4) && (r.AWQ == nil || r.AWQ.Alpha == nil || r.AWQ.Base != wantBase) {
				t.Errorf("%s: %s has no awq record: %+v", name, r.Name, r.AWQ)
			}
		}
		eopt := ExportOptions{Precision: tc.prec, Int4Accuracy: 1}
		out, em := exportTo(t, art, eopt)
		if em.Source.Scheme == nil || em.Source.Scheme.AWQ == nil {
			t.Errorf("%s: export manifest does not carry the awq record", name)
		}
		c, hw := testShape(t, tc.dir)
		x, shape := patternInput(2, c, hw)
		matchesRefNet(t, name, out, art, x, shape)
	}
}

// testShape reads a model's input channels and (square) export image size.
func testShape(t testing.TB, dir string) (c, hw int) {
	t.Helper()
	s, err := openExportSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, _, _, err := s.imageSize(0)
	if err != nil {
		t.Fatal(err)
	}
	return s.cfg.Int("num_channels", 3), h
}

// patternInput is a deterministic [b, c, hw, hw] input.
func patternInput(b, c, hw int) ([]float32, []int64) {
	x := make([]float32, b*c*hw*hw)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37) * 1.5)
	}
	return x, []int64{int64(b), int64(c), int64(hw), int64(hw)}
}

func fileSum(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestAWQAlphaZeroAndThreads: with the grid pinned to α = 0 every scale is
// 1, so the awq artifact's weights are the base method's byte for byte;
// and an awq conversion writes the same bytes at 1 and 3 threads.
func TestAWQAlphaZeroAndThreads(t *testing.T) {
	dir := filepath.Join(testenv.Fixtures(t, "trained"), "vit-28")
	cal := awqCalib(t, 12)
	conv := func(opt Options) [32]byte {
		t.Helper()
		out := filepath.Join(t.TempDir(), "a")
		if _, err := Convert(context.Background(), dir, out, opt); err != nil {
			t.Fatal(err)
		}
		return fileSum(t, filepath.Join(out, "model.safetensors"))
	}
	a1 := conv(Options{Precision: Int4, Method: quant.MethodAWQ, Calib: cal, Threads: 1})
	a3 := conv(Options{Precision: Int4, Method: quant.MethodAWQ, Calib: cal, Threads: 3})
	if a1 != a3 {
		t.Error("awq artifact differs between 1 and 3 threads")
	}
	old := awqGrid
	awqGrid = func() []float64 { return []float64{0} }
	defer func() { awqGrid = old }()
	for _, base := range []quant.Method{quant.MethodHQQ, quant.MethodRTN} {
		zero := conv(Options{Precision: Int4, Method: quant.MethodAWQ, AWQBase: base, Calib: cal})
		plain := conv(Options{Precision: Int4, Method: base})
		if zero != plain {
			t.Errorf("awq at α = 0 over %s differs from %s", base, base)
		}
	}
	if a1 == conv(Options{Precision: Int4, Method: quant.MethodHQQ}) {
		t.Error("awq with the full grid wrote exactly hqq's bytes: no scaling was chosen anywhere")
	}
}

// TestAWQExportMul exports a checkpoint with awq: the MLP output denses get
// an explicit Mul by 1/s before MatMulNBits, the graph runs in ONNX
// Runtime, and its logits stay close to FP32's (the quantization error).
func TestAWQExportMul(t *testing.T) {
	dir := filepath.Join(testenv.Fixtures(t, "trained"), "vit-28")
	cal := awqCalib(t, 16)
	out, em := exportTo(t, dir, ExportOptions{Precision: Int4, Convert: Options{Method: quant.MethodAWQ, Calib: cal}})
	f32, _ := exportTo(t, dir, ExportOptions{Precision: FP32})
	muls := 0
	for _, g := range em.Source.Scheme.AWQ.Groups {
		if g.Fold == awqFoldMul {
			muls++
		}
	}
	if muls != 3 {
		t.Errorf("%d groups with an explicit Mul, want 3 (one MLP output dense per layer)", muls)
	}
	x, shape := patternInput(4, 3, 28)
	got, want := runONNX(t, out, x, shape)["logits"].F32, runONNX(t, f32, x, shape)["logits"].F32
	var dot, a2, b2 float64
	for i := range got {
		dot += float64(got[i]) * float64(want[i])
		a2 += float64(got[i]) * float64(got[i])
		b2 += float64(want[i]) * float64(want[i])
	}
	// 4-bit weights: vit-28's int4 exports keep a mean logit cosine of
	// 0.996–0.997 with FP32 on the test images; a wrong Mul (s instead of
	// 1/s) or a missing fold is far off.
	if cos := dot / math.Sqrt(a2*b2); cos < 0.99 {
		t.Errorf("logit cosine with FP32 %.4f < 0.99", cos)
	}
}

// TestAWQUsage: awq without calibration images, at a precision it does not
// apply to, with a base that does not apply, or --awq-base without awq,
// is a usage error (exit 2) that says what to give.
func TestAWQUsage(t *testing.T) {
	cal := &Calibration{Images: "calib"}
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Precision: Int4, Method: quant.MethodAWQ}, "--calib-images"},
		{Options{Precision: Int8, Method: quant.MethodAWQ, Calib: cal}, "int4 and nf4 only"},
		{Options{Precision: FP16, Method: quant.MethodAWQ, Calib: cal}, "int4 and nf4 only"},
		{Options{Precision: NF4, Method: quant.MethodAWQ, AWQBase: quant.MethodHQQ, Calib: cal}, "nf4 has none"},
		{Options{Precision: Int4, Method: quant.MethodAWQ, AWQBase: quant.MethodAWQ, Calib: cal}, "block method"},
		{Options{Precision: Int4, Method: quant.MethodHQQ, AWQBase: quant.MethodRTN}, "--method awq only"},
		{Options{Precision: Int4, Method: quant.MethodAWQ, Calib: cal, Overrides: map[string]Precision{"x": Int8}}, "per-tensor"},
	} {
		err := tc.opt.Validate()
		if fault.ClassOf(err) != fault.Usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v (class %v), want a usage error mentioning %q", tc.opt, err, fault.ClassOf(err), tc.want)
		}
	}
	o := Options{Precision: Int4, Method: quant.MethodAWQ, Calib: cal}
	if err := o.Validate(); err != nil {
		t.Errorf("valid awq options refused: %v", err)
	}
}

// TestAWQSearchUsesTensorBlock: the α search scores int4 candidates at the
// block the conversion will write for a weight of k inputs — the
// per-tensor rule's 64 for K = 192 (DeiT-Tiny), not the nominal 128 — and
// an explicit --block-size as given. The reference is quant's own fake
// quantizer at that block, computed separately.
func TestAWQSearchUsesTensorBlock(t *testing.T) {
	const n, k = 6, 192
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, n*k)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	fake := func(fq quant.FakeQuant) []float32 {
		out := make([]float32, len(w))
		if err := fq(out, w, n, k); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []struct {
		opt   Options
		block int
	}{
		{Options{Precision: Int4, Method: quant.MethodAWQ, Asymmetric: true}, 64},
		{Options{Precision: Int4, Method: quant.MethodAWQ, Asymmetric: true, BlockSize: 128}, 128},
	} {
		o := c.opt.withDefaults()
		if got := o.int4Block(k); got != int64(c.block) {
			t.Fatalf("BlockSize %d: int4Block(%d) = %d, want %d", c.opt.BlockSize, k, got, c.block)
		}
		got := fake(o.awqFakeQuantWith(quant.MethodRTN, k))
		want := fake(quant.Int4FakeQuant(quant.MethodRTN, quant.Int4Params{BlockSize: c.block, Symmetric: false}))
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("BlockSize %d: element %d = %g, want %g (block %d)", c.opt.BlockSize, i, got[i], want[i], c.block)
			}
		}
	}
}
