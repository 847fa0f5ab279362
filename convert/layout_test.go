package convert

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// TestLayoutTensorLists: the tensor list each scheme plans for one [40, 70]
// Linear weight, written out by hand from the formats' specifications
// (bitsandbytes Int8Params/Params4bit keys, MatMulNBits' input shapes) as an
// independent check of the table in layout.go: a changed suffix, dtype or
// shape rule fails here.
func TestLayoutTensorLists(t *testing.T) {
	const w = "enc.fc.weight"
	src := safetensors.TensorInfo{Name: w, DType: safetensors.BF16, Shape: []int64{40, 70}}
	// nf4: 2800 values → 1400 bytes; block 64 → 44 blocks; double quant
	// blocks of 256 → 1 nested block. int4 block 32: K=70 → 3 blocks of
	// 16 bytes, zero points two per byte → 2.
	type spec struct {
		name  string
		dtype safetensors.DType
		shape []int64
	}
	cases := []struct {
		scheme string
		opt    Options
		want   []spec
	}{
		{SchemeCopy, Options{}, []spec{{w, safetensors.BF16, []int64{40, 70}}}},
		{SchemeFP32, Options{}, []spec{{w, safetensors.F32, []int64{40, 70}}}},
		{SchemeFP16, Options{}, []spec{{w, safetensors.F16, []int64{40, 70}}}},
		{SchemeBF16, Options{}, []spec{{w, safetensors.BF16, []int64{40, 70}}}},
		{SchemeInt8, Options{Precision: Int8}, []spec{
			{w, safetensors.I8, []int64{40, 70}},
			{"enc.fc.SCB", safetensors.F32, []int64{40}},
			{"enc.fc.weight_format", safetensors.U8, []int64{}},
		}},
		{SchemeInt8Ch, Options{Precision: Int8}, []spec{
			{w, safetensors.I8, []int64{40, 70}},
			{w + "_absmax", safetensors.F32, []int64{40}},
		}},
		{SchemeInt4, Options{Precision: Int4, BlockSize: 32}, []spec{
			{w, safetensors.U8, []int64{40, 3, 16}},
			{w + "_scale", safetensors.F32, []int64{40, 3}},
		}},
		{SchemeInt4, Options{Precision: Int4, BlockSize: 32, Asymmetric: true}, []spec{
			{w, safetensors.U8, []int64{40, 3, 16}},
			{w + "_scale", safetensors.F32, []int64{40, 3}},
			{w + "_zero_point", safetensors.U8, []int64{40, 2}},
		}},
		{SchemeNF4, Options{Precision: NF4, BlockSize: 64, DoubleQuant: SwitchOff}, []spec{
			{w, safetensors.U8, []int64{1400, 1}},
			{w + ".quant_map", safetensors.F32, []int64{16}},
			{w + ".absmax", safetensors.F32, []int64{44}},
			{w + ".quant_state.bitsandbytes__nf4", safetensors.U8, []int64{int64(len(`{"quant_type":"nf4","blocksize":64,"dtype":"float16","shape":[40,70]}`))}},
		}},
		{SchemeNF4, Options{Precision: NF4, BlockSize: 64}, []spec{
			{w, safetensors.U8, []int64{1400, 1}},
			{w + ".quant_map", safetensors.F32, []int64{16}},
			{w + ".absmax", safetensors.U8, []int64{44}},
			{w + ".nested_absmax", safetensors.F32, []int64{1}},
			{w + ".nested_quant_map", safetensors.F32, []int64{256}},
			{w + ".quant_state.bitsandbytes__nf4", safetensors.U8, []int64{int64(len(
				`{"quant_type":"nf4","blocksize":64,"dtype":"float16","shape":[40,70],"nested_blocksize":256,"nested_dtype":"float32","nested_offset":0` +
					strings.Repeat(" ", nf4OffsetWidth-1) + `}`))}},
		}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/block%d/asym=%v/dq=%d", c.scheme, c.opt.BlockSize, c.opt.Asymmetric, c.opt.DoubleQuant), func(t *testing.T) {
			it := &item{src: safetensors.Entry{TensorInfo: src}, scheme: c.scheme}
			if err := planItem(it, &c.opt); err != nil {
				t.Fatal(err)
			}
			if len(it.outs) != len(c.want) || len(it.parts) != len(it.outs) {
				t.Fatalf("planned %v (%d parts), want %v", it.outs, len(it.parts), c.want)
			}
			for i, o := range it.outs {
				if want := c.want[i]; o.Name != want.name || o.DType != want.dtype || !slices.Equal(o.Shape, want.shape) || o.Shape == nil {
					t.Errorf("output %d: %s %s %v, want %s %s %v", i, o.Name, o.DType, o.Shape, want.name, want.dtype, want.shape)
				}
			}
		})
	}
}

// TestLayoutTable checks the table's own invariants, as ollama checks its
// Replacements: one unsuffixed weight row per layout, part names unique in
// every geometry the options allow, names invertible, fixed contents of the
// planned size, readers accepting what the writer writes, and every marker
// present.
func TestLayoutTable(t *testing.T) {
	const w = "a.b.weight"
	seen := map[string]bool{}
	for _, l := range layouts {
		if seen[l.Scheme] {
			t.Errorf("scheme %s has two layouts", l.Scheme)
		}
		seen[l.Scheme] = true
		if l.Parts[0].Part != partWeight || l.Parts[0].Suffix != "" || l.Parts[0].OfLayer {
			t.Errorf("%s: first row %+v, want the weight itself", l.Scheme, l.Parts[0])
		}
		if l.Marker != "" && !slices.ContainsFunc(l.Parts, func(p tensorPart) bool { return p.Part == l.Marker }) {
			t.Errorf("%s: marker %s is not a part", l.Scheme, l.Marker)
		}
		if (l.Marker == "") != (l.Found == "") {
			t.Errorf("%s: marker %q but inspect name %q", l.Scheme, l.Marker, l.Found)
		}
		for _, p := range l.Parts {
			if p.DType != "" && !slices.Contains(l.accepts(p.Part), p.DType) {
				t.Errorf("%s: readers of %s refuse the %s it is written in", l.Scheme, p.Part, p.DType)
			}
			if p.Part == partWeight {
				continue
			}
			if got, ok := p.owner(p.name(w)); !ok || got != w {
				t.Errorf("%s: owner(%q) = %q, %v", l.Scheme, p.name(w), got, ok)
			}
			if q := l.part(p.Part); q.Suffix != p.Suffix || q.OfLayer != p.OfLayer {
				t.Errorf("%s: part %s named two ways", l.Scheme, p.Part)
			}
		}
		for _, g := range []geom{
			{Shape: []int64{48, 96}, DType: safetensors.F32, Block: 32, TorchDType: "float16"},
			{Shape: []int64{48, 96}, DType: safetensors.F32, Block: 32, TorchDType: "float16", Asym: true, DoubleQuant: true},
		} {
			specs, rows, err := l.specs(w, g)
			if err != nil {
				t.Fatalf("%s: %v", l.Scheme, err)
			}
			names := map[string]bool{}
			for i, s := range specs {
				if names[s.Name] {
					t.Errorf("%s %+v: %s planned twice", l.Scheme, g, s.Name)
				}
				names[s.Name] = true
				if rows[i].Fixed != nil && int64(len(rows[i].Fixed())) != specBytes(s) {
					t.Errorf("%s: fixed %s holds %d bytes, planned %d", l.Scheme, s.Name, len(rows[i].Fixed()), specBytes(s))
				}
			}
		}
	}
	for _, s := range []string{SchemeCopy, SchemeFP32, SchemeFP16, SchemeBF16, SchemeInt8, SchemeInt8Ch, SchemeInt4, SchemeNF4} {
		if layoutOf(s) == nil {
			t.Errorf("scheme %s has no layout", s)
		}
	}
}

// TestInspectCountsEachParamOnce: inspect recognises every quantized layout
// convert writes (by the table) and counts each logical parameter once, so
// an artifact reports the source's parameter count. int4 at block 32 (the
// fixture's width divides by it, so no padding adds parameters).
func TestInspectCountsEachParamOnce(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	in, err := Inspect(src)
	if err != nil {
		t.Fatal(err)
	}
	want := in.Totals.Params
	for _, c := range []struct {
		opt    Options
		scheme string
		detail string
	}{
		{Options{Precision: Int8}, "bnb-int8", "rowwise absmax, w = q*SCB/127"},
		// int4's default method (hqq) implies zero points; rtn keeps it symmetric.
		{Options{Precision: Int4, BlockSize: 32, Method: quant.MethodRTN}, "quantpack-int4", "block 32, symmetric"},
		{Options{Precision: Int4, BlockSize: 32, Asymmetric: true}, "quantpack-int4", "block 32, asymmetric"},
		{Options{Precision: NF4, BlockSize: 64, DoubleQuant: SwitchOff}, "bnb-nf4", "block 64"},
		{Options{Precision: NF4, BlockSize: 64}, "bnb-nf4", "block 64, double quant (nested block 256)"},
	} {
		art := filepath.Join(t.TempDir(), "art")
		m, err := Convert(context.Background(), src, art, withTestThreads(c.opt))
		if err != nil {
			t.Fatal(err)
		}
		quantized := 0
		for _, r := range m.Tensors {
			if r.Role == RoleLinear && !isFloatScheme(r.Scheme) {
				quantized++
			}
		}
		got, err := Inspect(art)
		if err != nil {
			t.Fatal(err)
		}
		if got.Totals.Params != want {
			t.Errorf("%s: inspect counts %d params, the source %d", c.detail, got.Totals.Params, want)
		}
		if len(got.Quantization) != 1 || got.Quantization[0].Scheme != c.scheme || got.Quantization[0].Tensors != quantized ||
			!slices.Equal(got.Quantization[0].Details, []string{c.detail}) {
			t.Errorf("%s: found %+v, want %s over %d tensors (%s)", c.opt.Precision, got.Quantization, c.scheme, quantized, c.detail)
		}
	}
}

func withTestThreads(o Options) Options {
	o.Threads, o.NoStats = 1, true
	return o
}
