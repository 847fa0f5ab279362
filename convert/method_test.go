package convert

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestConvertMethods converts the reference ViT with each 4-bit method and
// checks what the manifest says: the method recorded, hqq turned into
// asymmetric int4 with zero points written, and every quantized tensor's
// SQNR at least round-to-nearest's (the methods never pick a block
// parameter that does worse, so neither can a tensor).
func TestConvertMethods(t *testing.T) {
	dir := filepath.Join(fixtures(t), "reference", "vit")
	conv := func(opt Options) *Manifest {
		t.Helper()
		m, err := Convert(context.Background(), dir, filepath.Join(t.TempDir(), "a"), opt)
		if err != nil {
			t.Fatalf("%+v: %v", opt, err)
		}
		return m
	}
	sqnr := func(m *Manifest) map[string]float64 {
		out := map[string]float64{}
		for _, r := range m.Tensors {
			if r.Scheme == SchemeInt4 || r.Scheme == SchemeNF4 {
				out[r.Name] = *r.Error.SQNRdB
			}
		}
		return out
	}
	for _, tc := range []struct {
		prec   Precision
		asym   bool
		method quant.Method
	}{{Int4, false, quant.MethodMSE}, {Int4, true, quant.MethodMSE}, {Int4, false, quant.MethodHQQ}, {NF4, false, quant.MethodMSE}} {
		name := fmt.Sprintf("%s-%s-asym%v", tc.prec, tc.method, tc.asym)
		rtnAsym := tc.asym || tc.method == quant.MethodHQQ
		rtn := conv(Options{Precision: tc.prec, Asymmetric: rtnAsym, BlockSize: 16, Method: quant.MethodRTN})
		got := conv(Options{Precision: tc.prec, Asymmetric: tc.asym, Method: tc.method, BlockSize: 16})
		if got.Scheme.Method != tc.method || rtn.Scheme.Method != quant.MethodRTN {
			t.Errorf("%s: manifest method %q (rtn run: %q)", name, got.Scheme.Method, rtn.Scheme.Method)
		}
		if tc.prec == Int4 && *got.Scheme.Symmetric == rtnAsym {
			t.Errorf("%s: manifest symmetric %v", name, *got.Scheme.Symmetric)
		}
		rs, gs := sqnr(rtn), sqnr(got)
		if len(gs) == 0 || len(gs) != len(rs) {
			t.Fatalf("%s: %d quantized tensors, rtn %d", name, len(gs), len(rs))
		}
		var gain float64
		for n, g := range gs {
			if g < rs[n] {
				t.Errorf("%s: %s SQNR %.3f dB < rtn %.3f", name, n, g, rs[n])
			}
			gain += g - rs[n]
		}
		t.Logf("%s: mean SQNR gain %.3f dB over %d tensors", name, gain/float64(len(gs)), len(gs))
		if rtnAsym {
			for _, r := range got.Tensors {
				if r.Scheme == SchemeInt4 && len(r.Outputs) != 3 {
					t.Fatalf("%s: %s outputs %v, want codes, scales, zero points", name, r.Name, r.Outputs)
				}
			}
		}
	}
}

// TestConvertDefaultMethod: without --method, int4 is hqq (asymmetric, zero
// points written) at DefaultInt4Block and nf4 is rtn; the manifest says so.
func TestConvertDefaultMethod(t *testing.T) {
	dir := filepath.Join(fixtures(t), "reference", "vit")
	m, err := Convert(context.Background(), dir, filepath.Join(t.TempDir(), "a"), Options{Precision: Int4})
	if err != nil {
		t.Fatal(err)
	}
	if m.Scheme.Method != DefaultInt4Method || m.Scheme.BlockSize != DefaultInt4Block || *m.Scheme.Symmetric {
		t.Errorf("int4 default scheme %+v (symmetric %v)", m.Scheme, *m.Scheme.Symmetric)
	}
	m, err = Convert(context.Background(), dir, filepath.Join(t.TempDir(), "b"), Options{Precision: NF4})
	if err != nil {
		t.Fatal(err)
	}
	if m.Scheme.Method != DefaultNF4Method {
		t.Errorf("nf4 default method %q", m.Scheme.Method)
	}
}

// TestConvertMethodUsage: a method that does not apply is a usage error
// before anything is written.
func TestConvertMethodUsage(t *testing.T) {
	dir := filepath.Join(fixtures(t), "reference", "vit")
	for _, opt := range []Options{
		{Precision: NF4, Method: quant.MethodHQQ},
		{Precision: Int8, Method: quant.MethodMSE},
		{Precision: FP16, Method: quant.MethodHQQ},
		{Precision: Int4, Method: "gptq"},
	} {
		_, err := Convert(context.Background(), dir, filepath.Join(t.TempDir(), "a"), opt)
		if fault.ClassOf(err) != fault.Usage {
			t.Errorf("%+v: %v, want a usage error", opt, err)
		}
	}
	_, err := Convert(context.Background(), dir, filepath.Join(t.TempDir(), "a"), Options{Precision: Int4, Method: "gptq"})
	if !errors.Is(err, quant.ErrMethod) {
		t.Errorf("unknown method: %v, want quant.ErrMethod", err)
	}
}

// TestMethodExports: the codes and scales the methods choose load through
// ORT's MatMulNBits (symmetric and with zero points, accuracy level 1, which
// dequantizes exactly) and MatMulBnb4 unchanged: each export matches the
// float64 forward pass on the artifact's weights as dequantized by
// quant.DequantizeInt4/DequantizeNF4 (forward64_test.go) to 1e-5 of the
// output scale, the bound TestQuantizedExports sets for exact-weight paths.
func TestMethodExports(t *testing.T) {
	fx := fixtures(t)
	orttest.Require(t)
	for _, model := range []string{"vit", "deit-distilled"} {
		dir := filepath.Join(fx, "reference", model)
		c := readRef(t, dir).Cases[0]
		x, shape := testInputs(readBin(t, filepath.Join(dir, c.Input.File)), c.Input.Shape)
		for _, v := range []struct {
			prec   Precision
			asym   bool
			method quant.Method
			opt    ExportOptions
		}{
			{Int4, false, quant.MethodMSE, ExportOptions{Precision: ExportInt4, Int4Accuracy: 1}},
			{Int4, false, quant.MethodHQQ, ExportOptions{Precision: ExportInt4, Int4Accuracy: 1}},
			{NF4, false, quant.MethodMSE, ExportOptions{Precision: ExportNF4}},
		} {
			name := fmt.Sprintf("%s %s-%s", model, v.prec, v.method)
			art := filepath.Join(t.TempDir(), "a")
			copt := Options{Precision: v.prec, Asymmetric: v.asym, Method: v.method, DoubleQuant: SwitchOf(v.prec == NF4), NoStats: true}
			if _, err := Convert(context.Background(), dir, art, copt); err != nil {
				t.Fatal(err)
			}
			out, em := exportTo(t, art, v.opt)
			if em.Source.Scheme == nil || em.Source.Scheme.Method != v.method {
				t.Errorf("%s: export manifest does not carry the method: %+v", name, em.Source.Scheme)
			}
			matchesRefNet(t, name, out, art, x, shape)
		}
	}
}
