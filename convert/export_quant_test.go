package convert

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/verify/ort"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestReferenceForwardMatchesFixtures validates the float64 forward pass
// (forward64_test.go) on the original checkpoints: the fixtures report
// float32-vs-float64 differences of at most 3e-6, so 1e-5 is a miss of the
// reference itself.
func TestReferenceForwardMatchesFixtures(t *testing.T) {
	fx := fixtures(t)
	for _, name := range referenceModels {
		if name == "mobilevit" {
			continue
		}
		dir := filepath.Join(fx, "reference", name)
		n := loadRefNet(t, dir)
		for _, c := range readRef(t, dir).Cases {
			got := n.forwardBatch(readBin(t, filepath.Join(dir, c.Input.File)), c.Input.Shape)
			for k, o := range c.Outputs {
				a := compare64(readBin(t, filepath.Join(dir, o.File)), got[k])
				if a.MaxAbs > 1e-5 {
					t.Errorf("%s %s %s: float64 reference max-abs %.3g from transformers", name, c.Name, k, a.MaxAbs)
				}
			}
		}
	}
}

// quantVariant is one quantized export of an artifact.
type quantVariant struct {
	name string
	conv Precision
	asym bool // int4 with zero points
	opt  ExportOptions
	// Bounds, from measurement on the reference models (see
	// TestQuantizedExports): vsRef bounds the graph against the float64
	// forward on the same dequantized weights (max-abs relative to the
	// output's largest magnitude); vsFP32 bounds the cosine with the model's
	// own fp32 export.
	maxRelRef float64
	minCosFP  float64
	// level is the ONNX Runtime optimization level to run at (0: all).
	level int
}

// quantVariants and their tolerances, set from the measurements that
// TestQuantizedExports logs (worst over the seven reference models, batch 4):
//
//   - Exact-weight paths compute the reference's float32 products up to
//     summation order: nf4 (MatMulBnb4 dequantizes to fp32), int4 at
//     accuracy level 1, and int8 qdq at ORT's basic optimization level
//     (DequantizeLinear + MatMul as written), asymmetric int4 (zero points)
//     at level 1 too. Measured ≤ 7.5e-7 of the output
//     scale; bound 1e-5.
//   - fp16 rounds every activation to half precision (2⁻¹¹ relative per
//     rounding): measured 6.1e-4; bound 3e-3.
//   - Paths that quantize activations: int8 dynamic (uint8 per tensor,
//     measured 0.042), int4 at accuracy level 4 (int8 per block, 0.022), and
//     int8 qdq at ORT's default level, where ORT rewrites DequantizeLinear +
//     MatMul into an 8-bit MatMulNBits with accuracy level 4 (0.028). Bound
//     0.1: these are random-weight models whose activations are far from
//     normal; trained weights quantize better.
//
// The fp32 agreement bounds sit below the worst measured cosine (fp16 1.0,
// int8 0.99975, int4 0.976, nf4 0.973): random weights are full-rank noise
// and lose more to 4 bits than trained ones.
var quantVariants = []quantVariant{
	{"fp16", FP16, false, ExportOptions{Precision: ExportFP16}, 3e-3, 0.9999, 0},
	{"int8-dynamic", Int8, false, ExportOptions{Precision: ExportInt8, Int8Mode: Int8Dynamic}, 0.1, 0.999, 0},
	{"int8-qdq", Int8, false, ExportOptions{Precision: ExportInt8, Int8Mode: Int8QDQ}, 0.1, 0.999, 0},
	{"int8-qdq-basic", Int8, false, ExportOptions{Precision: ExportInt8, Int8Mode: Int8QDQ}, 1e-5, 0.999, ort.OptBasic},
	{"int4", Int4, false, ExportOptions{Precision: ExportInt4}, 0.1, 0.95, 0},
	{"int4-acc1", Int4, false, ExportOptions{Precision: ExportInt4, Int4Accuracy: 1}, 1e-5, 0.95, 0},
	{"int4-asym-acc1", Int4, true, ExportOptions{Precision: ExportInt4, Int4Accuracy: 1}, 1e-5, 0.95, 0},
	{"nf4", NF4, false, ExportOptions{Precision: ExportNF4}, 1e-5, 0.95, 0},
}

// testInputs returns the fixture's input followed by three deterministic
// synthetic images (smooth patterns plus texture, in the normalized range).
func testInputs(x []float32, shape []int64) ([]float32, []int64) {
	c, h, w := shape[1], shape[2], shape[3]
	out := append([]float32{}, x...)
	for img := 1; img <= 3; img++ {
		for ch := int64(0); ch < c; ch++ {
			for y := int64(0); y < h; y++ {
				for xx := int64(0); xx < w; xx++ {
					v := math.Sin(float64(y)*0.3*float64(img)+float64(ch)) * math.Cos(float64(xx)*0.17+float64(img))
					v += 0.5 * math.Sin(float64(y*w+xx)*1.618*float64(img+int(ch)))
					out = append(out, float32(1.5*v))
				}
			}
		}
	}
	return out, []int64{4, c, h, w}
}

func maxAbs64(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// TestQuantizedExports converts each reference checkpoint, exports the
// artifact at every precision, and checks each export twice: against the
// float64 forward pass on the artifact's dequantized weights (the graph
// computes what the artifact means) and against the fp32 export (how much
// quantization costs). Top-1 agreement is reported for classifiers.
func TestQuantizedExports(t *testing.T) {
	fx := fixtures(t)
	orttest.Require(t)
	for _, name := range referenceModels {
		if name == "mobilevit" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(fx, "reference", name)
			c := readRef(t, dir).Cases[0]
			x, shape := testInputs(readBin(t, filepath.Join(dir, c.Input.File)), c.Input.Shape)
			base, _ := exportTo(t, dir, ExportOptions{Precision: ExportFP32})
			fp32 := runONNX(t, base, x, shape)
			arts := map[string]string{}
			for _, v := range quantVariants {
				key := fmt.Sprint(v.conv, v.asym)
				art, ok := arts[key]
				if !ok {
					art = filepath.Join(t.TempDir(), key)
					copt := Options{Precision: v.conv, Asymmetric: v.asym, NoStats: true}
					if _, err := Convert(context.Background(), dir, art, copt); err != nil {
						t.Fatal(err)
					}
					arts[key] = art
				}
				out, _ := exportTo(t, art, v.opt)
				got := runONNXAt(t, out, x, shape, v.level)
				ref := loadRefNet(t, art).forwardBatch(x, shape)
				for oname, want := range ref {
					g := got[oname].F32
					r := compare64(g, want)
					rel := r.MaxAbs / maxAbs64(want)
					f := compare(g, fp32[oname].F32)
					msg := fmt.Sprintf("%s %s: vs float64 ref cos %.7f rel-max-abs %.2g; vs fp32 export cos %.6f", v.name, oname, r.Cosine, rel, f.Cosine)
					if oname == "logits" {
						n := len(g) / int(shape[0])
						agree := 0
						for i, k := range top1(g, n) {
							if k == top1(fp32[oname].F32, n)[i] {
								agree++
							}
						}
						msg += fmt.Sprintf(" top-1 %d/%d", agree, shape[0])
					}
					t.Log(msg)
					if rel > v.maxRelRef {
						t.Errorf("%s: relative max-abs vs reference %.3g > %g", msg, rel, v.maxRelRef)
					}
					if v.maxRelRef <= 1e-5 && 1-r.Cosine >= 1-f.Cosine {
						t.Errorf("%s: not closer to the reference on its own weights than to fp32", msg)
					}
					if f.Cosine < v.minCosFP {
						t.Errorf("%s: cosine vs fp32 %.6f < %g", msg, f.Cosine, v.minCosFP)
					}
				}
			}
		})
	}
}
