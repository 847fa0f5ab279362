package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/quant"
)

// Regression tests of issue 17 ("nothing silently wrong"): each reproduces a
// hostile case that used to end with a wrong answer and exit 0.

// cancelBeforeCommit makes the next commit see a cancelled context, as if
// SIGINT landed after the last tensor was written.
func cancelBeforeCommit(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	testHookBeforeCommit = cancel
	t.Cleanup(func() { testHookBeforeCommit = func() {}; cancel() })
	return ctx
}

// Issue 17 case 2: a signal after the weights were written but before the
// commit must mean no output and a cancellation error (exit 130), not a
// committed artifact and exit 0.
func TestConvertSignalBeforeCommit(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	ctx := cancelBeforeCommit(t)
	parent := t.TempDir()
	_, err := Convert(ctx, src, filepath.Join(parent, "out"), Options{Precision: NF4, Threads: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Convert cancelled before commit: err = %v, want context.Canceled", err)
	}
	assertEmptyDir(t, parent)
}

func TestExportSignalBeforeCommit(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	ctx := cancelBeforeCommit(t)
	parent := t.TempDir()
	_, err := Export(ctx, src, filepath.Join(parent, "out"), ExportOptions{Precision: ExportFP32})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Export cancelled before commit: err = %v, want context.Canceled", err)
	}
	assertEmptyDir(t, parent)
}

// assertEmptyDir fails unless dir holds nothing (no output, no temporary).
func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s left in %s", e.Name(), dir)
	}
}

// Issue 17 case 3: an already-quantized input (a quantpack artifact, or the
// same bitsandbytes tensors without quantpack.json) is refused as
// unsupported, naming what it is, and nothing is written.
func TestConvertRefusesQuantizedInput(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	for _, p := range []Precision{Int8, Int4, NF4} {
		t.Run(string(p), func(t *testing.T) {
			art := filepath.Join(t.TempDir(), "art")
			if _, err := Convert(context.Background(), src, art, Options{Precision: p, Threads: 1, NoStats: true}); err != nil {
				t.Fatal(err)
			}
			bare := testenv.CopyDir(t, art)
			if err := os.Remove(filepath.Join(bare, "quantpack.json")); err != nil {
				t.Fatal(err)
			}
			for _, in := range []string{art, bare} {
				parent := t.TempDir()
				_, err := Convert(context.Background(), in, filepath.Join(parent, "out"), Options{Precision: NF4, Threads: 1})
				if !errors.Is(err, ErrQuantizedInput) || fault.ClassOf(err) != fault.Unsupported {
					t.Errorf("convert of a %s artifact: err = %v, want ErrQuantizedInput (unsupported)", p, err)
				}
				assertEmptyDir(t, parent)
			}
		})
	}
}

// rewriteTensors rewrites dir/model.safetensors after edit has changed
// the tensor list and bodies (keyed by name).
func rewriteTensors(t testing.TB, dir string, edit func(specs []safetensors.TensorSpec, data map[string][]byte) []safetensors.TensorSpec) {
	t.Helper()
	p := filepath.Join(dir, "model.safetensors")
	ck, err := safetensors.OpenCheckpoint(p)
	if err != nil {
		t.Fatal(err)
	}
	var specs []safetensors.TensorSpec
	data := map[string][]byte{}
	for _, e := range ck.Tensors() {
		b := make([]byte, e.Size)
		if err := e.File.ReadTensor(e.TensorInfo, b); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, safetensors.TensorSpec{Name: e.Name, DType: e.DType, Shape: e.Shape})
		data[e.Name] = b
	}
	ck.Close()
	specs = edit(specs, data)
	w, err := safetensors.Create(p, map[string]string{"format": "pt"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if err := w.WriteTensor(s.Name, data[s.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// editConfig sets key of dir/config.json to the raw JSON value.
func editConfig(t testing.TB, dir, key, raw string) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = json.RawMessage(raw)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// specEdit changes one tensor of a checkpoint.
func specEdit(name string, f func(s *safetensors.TensorSpec, data map[string][]byte)) func([]safetensors.TensorSpec, map[string][]byte) []safetensors.TensorSpec {
	return func(specs []safetensors.TensorSpec, data map[string][]byte) []safetensors.TensorSpec {
		for i := range specs {
			if specs[i].Name == name {
				f(&specs[i], data)
			}
		}
		return specs
	}
}

const query0 = "vit.encoder.layer.0.attention.attention.query.weight" // [32, 32] F32 in reference/vit

// inconsistentSources are the checkpoints whose tensors disagree
// with their config.json (reference/vit: hidden 32, 4 heads, patch 8).
var inconsistentSources = []struct {
	name  string
	class fault.Class
	edit  func(t testing.TB, dir string)
}{
	{"missing Linear weight", fault.Invalid, func(t testing.TB, dir string) {
		rewriteTensors(t, dir, func(specs []safetensors.TensorSpec, _ map[string][]byte) []safetensors.TensorSpec {
			return slices.DeleteFunc(specs, func(s safetensors.TensorSpec) bool { return s.Name == query0 })
		})
	}},
	{"[0,32] weight", fault.Invalid, func(t testing.TB, dir string) {
		rewriteTensors(t, dir, specEdit(query0, func(s *safetensors.TensorSpec, d map[string][]byte) {
			s.Shape, d[s.Name] = []int64{0, 32}, nil
		}))
	}},
	{"same bytes, wrong shape", fault.Invalid, func(t testing.TB, dir string) {
		rewriteTensors(t, dir, specEdit(query0, func(s *safetensors.TensorSpec, _ map[string][]byte) { s.Shape = []int64{16, 64} }))
	}},
	{"I32 weight", fault.Unsupported, func(t testing.TB, dir string) {
		rewriteTensors(t, dir, specEdit(query0, func(s *safetensors.TensorSpec, _ map[string][]byte) { s.DType = safetensors.I32 }))
	}},
	{"BEiT config on ViT weights", fault.Invalid, func(t testing.TB, dir string) {
		editConfig(t, dir, "architectures", `["BeitForImageClassification"]`)
		editConfig(t, dir, "model_type", `"beit"`)
	}},
	{"hidden_size -32", fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "hidden_size", `-32`) }},
	{"hidden_size 0", fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "hidden_size", `0`) }},
	{`hidden_size "32"`, fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "hidden_size", `"32"`) }},
	{"0 heads", fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "num_attention_heads", `0`) }},
	{"7 heads", fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "num_attention_heads", `7`) }},
	{"patch_size 0", fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "patch_size", `0`) }},
	{`layer_norm_eps "abc"`, fault.Invalid, func(t testing.TB, dir string) { editConfig(t, dir, "layer_norm_eps", `"abc"`) }},
}

// Issue 17 case 4: convert checks the tensors against config.json before
// writing anything, as export does, with the same error classes.
func TestConvertValidatesAgainstConfig(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	for _, c := range inconsistentSources {
		t.Run(c.name, func(t *testing.T) {
			dir := testenv.CopyDir(t, src)
			c.edit(t, dir)
			parent := t.TempDir()
			_, err := Convert(context.Background(), dir, filepath.Join(parent, "out"), Options{Precision: Int8, Threads: 1})
			if err == nil || fault.ClassOf(err) != c.class {
				t.Errorf("convert: err = %v (class %v), want class %v", err, fault.ClassOf(err), c.class)
			}
			assertEmptyDir(t, parent)
			_, xerr := Export(context.Background(), dir, filepath.Join(parent, "x"), ExportOptions{Precision: ExportFP32})
			if xerr == nil || fault.ClassOf(xerr) != c.class {
				t.Errorf("export: err = %v (class %v), want class %v", xerr, fault.ClassOf(xerr), c.class)
			}
			assertEmptyDir(t, parent)
		})
	}
}

// Issue 17 case 5: a config that leaves tensors unused (fewer layers than the
// checkpoint, an unknown extra tensor) is ErrUnusedTensors naming them,
// unless AllowUnused.
func TestExportRefusesUnusedTensors(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	fewer := testenv.CopyDir(t, src)
	editConfig(t, fewer, "num_hidden_layers", `1`)
	extra := testenv.CopyDir(t, src)
	rewriteTensors(t, extra, func(specs []safetensors.TensorSpec, data map[string][]byte) []safetensors.TensorSpec {
		data["stray.weight"] = make([]byte, 16)
		return append(specs, safetensors.TensorSpec{Name: "stray.weight", DType: safetensors.F32, Shape: []int64{4}})
	})
	for _, c := range []struct{ name, dir, names string }{
		{"fewer layers", fewer, "vit.encoder.layer.1."},
		{"extra tensor", extra, "stray.weight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := Export(context.Background(), c.dir, filepath.Join(parent, "out"), ExportOptions{Precision: ExportFP32})
			if !errors.Is(err, ErrUnusedTensors) || fault.ClassOf(err) != fault.Invalid || !strings.Contains(err.Error(), c.names) {
				t.Errorf("err = %v, want ErrUnusedTensors naming %s", err, c.names)
			}
			assertEmptyDir(t, parent)
			if _, err := Export(context.Background(), c.dir, filepath.Join(parent, "out"), ExportOptions{Precision: ExportFP32, AllowUnused: true}); err != nil {
				t.Errorf("with AllowUnused: %v", err)
			}
		})
	}
}

// Issue 17 case 7: NaN and ±Inf are counted per tensor in the source and the
// output, the tensor's SQNR is not reported as if they were absent (a whole
// NaN row used to give 55.6 dB), the totals name it as the worst, with and
// without the statistics, and FailOnNonFinite refuses to write anything.
func TestConvertReportsNonFinite(t *testing.T) {
	const dense0 = "vit.encoder.layer.0.attention.output.dense.weight" // [32, 32]
	dir := testenv.CopyDir(t, filepath.Join(fixtures(t), "reference", "vit"))
	rewriteTensors(t, dir, func(specs []safetensors.TensorSpec, data map[string][]byte) []safetensors.TensorSpec {
		q := data[query0]
		for c := 0; c < 32; c++ { // row 3 all NaN
			binary.LittleEndian.PutUint32(q[(3*32+c)*4:], 0x7fc00000)
		}
		d := data[dense0]
		for _, i := range []int{0, 100, 1000} { // 1e6 overflows fp16 to ±Inf
			binary.LittleEndian.PutUint32(d[i*4:], math.Float32bits(1e6))
		}
		return specs
	})
	for _, noStats := range []bool{false, true} {
		m, err := Convert(context.Background(), dir, filepath.Join(t.TempDir(), "out"), Options{Precision: FP16, Threads: 2, NoStats: noStats})
		if err != nil {
			t.Fatal(err)
		}
		recs := map[string]*TensorRecord{}
		for _, r := range m.Tensors {
			recs[r.Name] = r
		}
		want := map[string]NonFinite{
			query0: {Source: quant.NonFiniteCount{NaN: 32}, Output: quant.NonFiniteCount{NaN: 32}},
			dense0: {Output: quant.NonFiniteCount{Inf: 3}},
		}
		for name, w := range want {
			r := recs[name]
			if r.NonFinite == nil || *r.NonFinite != w {
				t.Errorf("no-stats %v: %s non_finite %+v, want %+v", noStats, name, r.NonFinite, w)
			}
			if !noStats && (r.Error == nil || r.Error.SQNRdB != nil || r.Error.Exact) {
				t.Errorf("%s: error %+v, want no SQNR and not exact", name, r.Error)
			}
		}
		tot := m.Totals
		if tot.NonFiniteTensors != 2 || tot.NonFinite == nil || tot.NonFinite.Source.NaN != 32 || tot.NonFinite.Output.Inf != 3 ||
			tot.MinSQNRdB != nil || (tot.WorstTensor != query0 && tot.WorstTensor != dense0) {
			t.Errorf("no-stats %v: totals %+v (non-finite %+v), want 2 tensors, no min SQNR, worst one of them", noStats, tot, tot.NonFinite)
		}
	}
	// export at fp16 converts first and reports what that conversion found.
	xm, err := Export(context.Background(), dir, filepath.Join(t.TempDir(), "x"), ExportOptions{Precision: ExportFP16})
	if err != nil {
		t.Fatalf("export fp16: %v", err)
	}
	if xm.NonFiniteTensors != 2 || xm.NonFinite == nil || xm.NonFinite.Source.NaN != 32 {
		t.Errorf("export fp16: non-finite tensors %d (%+v), want 2", xm.NonFiniteTensors, xm.NonFinite)
	}
	parent := t.TempDir()
	_, err = Convert(context.Background(), dir, filepath.Join(parent, "out"), Options{Precision: FP16, FailOnNonFinite: true})
	if !errors.Is(err, ErrNonFinite) || fault.ClassOf(err) != fault.Invalid || !strings.Contains(err.Error(), query0) {
		t.Errorf("FailOnNonFinite: %v, want ErrNonFinite naming %s", err, query0)
	}
	assertEmptyDir(t, parent)
}

// Issue 17 case 3, asked explicitly: DequantizeInput reconstructs the
// quantized weights (checked bit for bit against dequantArtifact, the
// test's own reading of each layout) and converts them, and the manifest
// says the source was dequantized; without quantpack.json (bitsandbytes
// tensors alone) too.
func TestConvertDequantizeInput(t *testing.T) {
	cases := []struct {
		model string
		p     Precision
	}{{"vit", Int8}, {"vit", Int4}, {"vit", NF4}, {"mobilevit", Int8}}
	for _, c := range cases {
		t.Run(c.model+"/"+string(c.p), func(t *testing.T) {
			src := filepath.Join(fixtures(t), "reference", c.model)
			art := filepath.Join(t.TempDir(), "art")
			// int4 at block 32, the fixture's width: at the default block
			// (128) its rows are padded, and bare tensors without
			// quantpack.json no longer say the logical width.
			bs := 0
			if c.p == Int4 {
				bs = 32
			}
			mArt, err := Convert(context.Background(), src, art, Options{Precision: c.p, Threads: 1, NoStats: true, BlockSize: bs, DoubleQuant: SwitchOf(c.p == NF4)})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "fp16")
			m, err := Convert(context.Background(), art, out, Options{Precision: FP16, Threads: 2, DequantizeInput: true})
			if err != nil {
				t.Fatal(err)
			}
			if m.Dequantized == nil || m.Dequantized.Tensors == 0 || len(m.Dequantized.Schemes) == 0 {
				t.Fatalf("manifest does not record the dequantization: %+v", m.Dequantized)
			}
			if names, _ := os.ReadDir(filepath.Dir(out)); len(names) != 1 {
				t.Errorf("temporary checkpoint left beside the output: %v", names)
			}
			ckArt := openCheckpoint(t, art)
			ckOut := openCheckpoint(t, out)
			checked := 0
			for _, r := range mArt.Tensors {
				switch r.Scheme {
				case SchemeInt8, SchemeInt8Ch, SchemeInt4, SchemeNF4:
				default:
					continue
				}
				want := dequantArtifact(t, ckArt, r, mArt)
				// The fp16 output holds the reconstruction rounded to fp16.
				h := make([]uint16, len(want))
				quant.F32ToF16(h, want)
				quant.F16ToF32(want, h)
				raw, e := artRaw(t, ckOut, r.Name)
				if e.DType != safetensors.F16 || !slices.Equal(e.Shape, r.Shape) {
					t.Fatalf("%s: output %s %v, want F16 %v", r.Name, e.DType, e.Shape, r.Shape)
				}
				got := make([]float32, len(want))
				if err := decodeFloat32(got, raw, safetensors.F16); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: dequantized values differ from the layout's reconstruction", r.Name)
				}
				checked++
			}
			if checked != m.Dequantized.Tensors {
				t.Errorf("checked %d weights, manifest says %d were dequantized", checked, m.Dequantized.Tensors)
			}
			// Requantizing, and from the bare tensors without quantpack.json.
			bare := testenv.CopyDir(t, art)
			os.Remove(filepath.Join(bare, "quantpack.json"))
			if _, err := Convert(context.Background(), bare, filepath.Join(t.TempDir(), "nf4"), Options{Precision: NF4, Threads: 1, DequantizeInput: true}); err != nil {
				t.Errorf("requantizing the bare tensors: %v", err)
			}
		})
	}
}
