package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/quant"
)

func readF32(t *testing.T, e safetensors.Entry) []float32 {
	t.Helper()
	raw := make([]byte, e.Size)
	if err := e.File.ReadTensor(e.TensorInfo, raw); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, e.NumElements())
	if err := decodeFloat32(out, raw, e.DType); err != nil {
		t.Fatal(err)
	}
	return out
}

func artRaw(t *testing.T, ck *safetensors.Checkpoint, name string) ([]byte, safetensors.Entry) {
	t.Helper()
	e, ok := ck.Lookup(name)
	if !ok {
		t.Fatalf("artifact lacks %s", name)
	}
	raw := make([]byte, e.Size)
	if err := e.File.ReadTensor(e.TensorInfo, raw); err != nil {
		t.Fatal(err)
	}
	return raw, e
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

// TestConvertFixturesEveryPrecision converts each reference checkpoint to
// each precision, reads the artifact back with the safetensors reader and
// checks every quantized weight against the source within its scheme's bound:
// the artifact holds what the manifest says, in the layout it claims.
func TestConvertFixturesEveryPrecision(t *testing.T) {
	fx := fixtures(t)
	for _, model := range referenceModels {
		for _, p := range Precisions {
			t.Run(model+"/"+string(p), func(t *testing.T) {
				src := filepath.Join(fx, "reference", model)
				out := filepath.Join(t.TempDir(), "out")
				// rtn: the bounds below are those of round to nearest (the
				// other methods have their own tests in method_test.go).
				m, err := Convert(context.Background(), src, out, Options{Precision: p, Threads: 2, Method: quant.MethodRTN})
				if err != nil {
					t.Fatal(err)
				}
				srcCk := openCheckpoint(t, src)
				ck := openCheckpoint(t, out)
				quantized := 0
				for _, r := range m.Tensors {
					se, _ := srcCk.Lookup(r.Name)
					if r.Scheme == SchemeCopy {
						a, _ := artRaw(t, ck, r.Name)
						b := make([]byte, se.Size)
						se.File.ReadTensor(se.TensorInfo, b)
						if string(a) != string(b) {
							t.Errorf("%s: copied tensor differs", r.Name)
						}
						continue
					}
					x := readF32(t, se)
					got := dequantArtifact(t, ck, r, m)
					if len(got) != len(x) {
						t.Fatalf("%s: %d values, want %d", r.Name, len(got), len(x))
					}
					bound := schemeBound(r.Scheme, x, r.Shape)
					for i := range x {
						if d := math.Abs(float64(x[i] - got[i])); d > bound(i) {
							t.Fatalf("%s[%d] (%s): |%g - %g| = %g > bound %g", r.Name, i, r.Scheme, x[i], got[i], d, bound(i))
						}
					}
					if r.Role == RoleLinear {
						quantized++
					}
				}
				if (p == Int8 || p == Int4 || p == NF4) && quantized == 0 {
					t.Fatal("no Linear weight was quantized")
				}
				// Every file the manifest lists is there with its hash.
				have, err := manifest.Scan(out)
				if err != nil {
					t.Fatal(err)
				}
				if d := manifest.Diff(m.Files, have); len(d) != 0 {
					t.Fatalf("manifest vs disk: %v", d)
				}
			})
		}
	}
}

// dequantArtifact rebuilds float32 values of one source tensor from the
// artifact's tensors, using only the layout documented in docs/design.md
// ("Precisions and artifact layouts").
func dequantArtifact(t *testing.T, ck *safetensors.Checkpoint, r *TensorRecord, m *Manifest) []float32 {
	t.Helper()
	n := 1
	for _, d := range r.Shape {
		n *= int(d)
	}
	out := make([]float32, n)
	switch r.Scheme {
	case SchemeFP32, SchemeFP16, SchemeBF16:
		raw, e := artRaw(t, ck, r.Name)
		if err := decodeFloat32(out, raw, e.DType); err != nil {
			t.Fatal(err)
		}
	case SchemeInt8, SchemeInt8Ch:
		q, _ := artRaw(t, ck, r.Name)
		scaleName := prefixOf(r.Name) + ".SCB"
		if r.Scheme == SchemeInt8Ch {
			scaleName = r.Name + "_absmax"
		}
		sb, _ := artRaw(t, ck, scaleName)
		scb := f32s(sb)
		rows := int(r.Shape[0])
		cols := n / rows
		qi := make([]int8, len(q))
		for i, v := range q {
			qi[i] = int8(v)
		}
		if err := quant.DequantizeInt8Rows(out, qi, scb, rows, cols); err != nil {
			t.Fatal(err)
		}
	case SchemeInt4:
		packed, _ := artRaw(t, ck, r.Name)
		sb, _ := artRaw(t, ck, r.Name+"_scale")
		p := quant.Int4Params{BlockSize: r.BlockSize, Symmetric: *m.Scheme.Symmetric} // the tensor's own block
		var zp []byte
		if !p.Symmetric { // hqq (the int4 default) and --asymmetric store packed zero points
			zp, _ = artRaw(t, ck, r.Name+"_zero_point")
		}
		if err := quant.DequantizeInt4(out, packed, f32s(sb), zp, int(r.Shape[0]), int(r.Shape[1]), p); err != nil {
			t.Fatal(err)
		}
	case SchemeNF4:
		packed, pe := artRaw(t, ck, r.Name)
		if len(pe.Shape) != 2 || pe.Shape[1] != 1 || pe.Shape[0] != int64((n+1)/2) {
			t.Fatalf("%s: packed shape %v, bitsandbytes wants [(n+1)/2, 1]", r.Name, pe.Shape)
		}
		js, _ := artRaw(t, ck, r.Name+".quant_state.bitsandbytes__nf4")
		var st struct {
			QuantType    string   `json:"quant_type"`
			BlockSize    int      `json:"blocksize"`
			Shape        []int64  `json:"shape"`
			NestedBlock  int      `json:"nested_blocksize"`
			NestedOffset *float64 `json:"nested_offset"`
		}
		if err := json.Unmarshal(js, &st); err != nil {
			t.Fatalf("quant_state JSON: %v: %q", err, js)
		}
		if st.QuantType != "nf4" || st.BlockSize != m.Scheme.BlockSize || !slices.Equal(st.Shape, r.Shape) {
			t.Fatalf("quant_state %+v", st)
		}
		qm, _ := artRaw(t, ck, r.Name+".quant_map")
		if cb := quant.NF4Codebook; string(bytesOfF32(cb[:])) != string(qm) {
			t.Fatal("quant_map is not the NF4 codebook")
		}
		blocks := (n + st.BlockSize - 1) / st.BlockSize
		absmax := make([]float32, blocks)
		ab, ae := artRaw(t, ck, r.Name+".absmax")
		if st.NestedOffset != nil {
			if ae.DType != safetensors.U8 {
				t.Fatalf("double-quant absmax dtype %s", ae.DType)
			}
			nb, _ := artRaw(t, ck, r.Name+".nested_absmax")
			if err := quant.UndoDoubleQuant(absmax, ab, f32s(nb), float32(*st.NestedOffset), st.NestedBlock); err != nil {
				t.Fatal(err)
			}
		} else {
			absmax = f32s(ab)
		}
		if err := quant.DequantizeNF4(out, packed, absmax, st.BlockSize); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("%s: unexpected scheme %s", r.Name, r.Scheme)
	}
	return out
}

// schemeBound returns the per-element error bound of a scheme, from its
// definition: fp16/bf16 round to nearest (half an ulp, relative 2^-11 and
// 2^-8, plus the smallest subnormal for fp16); int8 rows are within half a
// step (absmax/254) plus float rounding of q·SCB/127; int4 within half a
// step of the block's scale (a whole step where +8 clips to +7); nf4 within the largest half-gap of the codebook
// (0.1626, between -1 and -0.696) times the block's absmax, with absmax
// itself carrying the double-quant error (loose factor 1.1).
func schemeBound(s string, x []float32, shape []int64) func(int) float64 {
	rowAbs := func(rows int) []float64 {
		cols := len(x) / rows
		out := make([]float64, rows)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				out[r] = math.Max(out[r], math.Abs(float64(x[r*cols+c])))
			}
		}
		return out
	}
	switch s {
	case SchemeFP32:
		return func(int) float64 { return 0 }
	case SchemeFP16:
		return func(i int) float64 { return math.Abs(float64(x[i]))*math.Pow(2, -11) + math.Pow(2, -25) }
	case SchemeBF16:
		return func(i int) float64 { return math.Abs(float64(x[i])) * math.Pow(2, -8) }
	case SchemeInt8, SchemeInt8Ch:
		ra := rowAbs(int(shape[0]))
		cols := len(x) / int(shape[0])
		return func(i int) float64 { a := ra[i/cols]; return a/254*1.0001 + a*1e-6 }
	case SchemeInt4:
		ra := rowAbs(int(shape[0]))
		cols := len(x) / int(shape[0])
		// The block's |scale| is at most the row absmax / 8. Rounding costs
		// half a step, but the symmetric scheme maps the signed extreme to
		// -8 and clips its opposite at +7, which costs a whole step.
		return func(i int) float64 { return ra[i/cols]/8*1.0001 + 1e-7 }
	case SchemeNF4:
		return func(i int) float64 {
			lo := i / 64 * 64
			hi := min(lo+64, len(x))
			var a float64
			for _, v := range x[lo:hi] {
				a = math.Max(a, math.Abs(float64(v)))
			}
			return a*0.1626*1.1 + 1e-7
		}
	}
	return func(int) float64 { return 0 }
}

// TestConvertDeterministic: the same conversion twice, and with 1 and 2
// threads, gives byte-identical files.
func TestConvertDeterministic(t *testing.T) {
	fx := fixtures(t)
	src := filepath.Join(fx, "reference", "beit")
	for _, p := range Precisions {
		var sums []string
		for i, threads := range []int{1, 2, 2} {
			out := filepath.Join(t.TempDir(), "o")
			if _, err := Convert(context.Background(), src, out, Options{Precision: p, Threads: threads}); err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			for _, f := range []string{"model.safetensors", "config.json", "quantpack.json"} {
				b, err := os.ReadFile(filepath.Join(out, f))
				if err != nil {
					t.Fatal(err)
				}
				h.Write(b)
			}
			sums = append(sums, hex.EncodeToString(h.Sum(nil)))
			if i > 0 && sums[i] != sums[0] {
				t.Fatalf("%s: run %d (threads %d) differs", p, i, threads)
			}
		}
	}
}

func TestConvertBadInput(t *testing.T) {
	fx := fixtures(t)
	ctx := context.Background()
	// Unsupported architecture: exit class Unsupported, message lists ours.
	dir := t.TempDir()
	src := filepath.Join(dir, "swin")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"architectures":["SwinForImageClassification"]}`), 0o644)
	b, _ := os.ReadFile(filepath.Join(fx, "reference", "vit", "model.safetensors"))
	os.WriteFile(filepath.Join(src, "model.safetensors"), b, 0o644)
	_, err := Convert(ctx, src, filepath.Join(dir, "out"), Options{Precision: Int8})
	if fault.ClassOf(err) != fault.Unsupported {
		t.Fatalf("unsupported arch: %v (class %v)", err, fault.ClassOf(err))
	}
	// --generic converts it anyway.
	if _, err := Convert(ctx, src, filepath.Join(dir, "out"), Options{Precision: Int8, Generic: true}); err != nil {
		t.Fatalf("--generic: %v", err)
	}
	// Invalid config.json: Invalid.
	os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"architectures":`), 0o644)
	_, err = Convert(ctx, src, filepath.Join(dir, "out2"), Options{Precision: Int8})
	if fault.ClassOf(err) != fault.Invalid {
		t.Fatalf("bad config: %v", err)
	}
	// Corrupt safetensors: Invalid, and nothing left behind.
	os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"architectures":["ViTForImageClassification"]}`), 0o644)
	os.WriteFile(filepath.Join(src, "model.safetensors"), b[:len(b)/2], 0o644)
	_, err = Convert(ctx, src, filepath.Join(dir, "out3"), Options{Precision: NF4})
	if fault.ClassOf(err) != fault.Invalid {
		t.Fatalf("truncated checkpoint: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "out3")); !os.IsNotExist(serr) {
		t.Fatal("output left behind after failure")
	}
	// Non-empty output directory: refused before any work.
	_, err = Convert(ctx, filepath.Join(fx, "reference", "vit"), filepath.Join(dir, "out"), Options{Precision: Int8})
	if !errors.Is(err, ErrOutputExists) {
		t.Fatalf("existing output: %v", err)
	}
	// Bad options are usage errors.
	_, err = Convert(ctx, filepath.Join(fx, "reference", "vit"), filepath.Join(dir, "o4"), Options{Precision: Int4, BlockSize: 24})
	if fault.ClassOf(err) != fault.Usage {
		t.Fatalf("bad block size: %v", err)
	}
}

// TestConvertCancelLeavesNothing: a cancelled context (what SIGINT does)
// stops the conversion and removes every temporary file and directory.
func TestConvertCancelLeavesNothing(t *testing.T) {
	fx := fixtures(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Convert(ctx, filepath.Join(fx, "reference", "vit"), filepath.Join(dir, "out"), Options{Precision: NF4})
	if fault.ClassOf(err) != fault.Interrupted {
		t.Fatalf("cancelled convert: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}
