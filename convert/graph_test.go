package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/quant"
)

// TestBicubicHandValues checks cubicCoeffs and the taps against values
// worked out by hand from PyTorch's formulas (A = -0.75).
func TestBicubicHandValues(t *testing.T) {
	// t = 0.5: conv2(1.5) = -0.09375, conv1(0.5) = 0.59375, symmetric.
	c := cubicCoeffs(0.5)
	want := [4]float64{-0.09375, 0.59375, 0.59375, -0.09375}
	for i := range c {
		if math.Abs(c[i]-want[i]) > 1e-15 {
			t.Fatalf("cubicCoeffs(0.5) = %v, want %v", c, want)
		}
	}
	// t = 0: the sample itself.
	if c := cubicCoeffs(0); c != [4]float64{0, 1, 0, 0} {
		t.Fatalf("cubicCoeffs(0) = %v", c)
	}
	// 2x2 → 1x1: source coordinate 0.5 in both axes, taps -1..2 clamped
	// to 0,0,1,1: the mean of the four samples.
	got := bicubicResize([]float64{1, 2, 3, 4}, 1, 2, 2, 1, 1)
	if math.Abs(got[0]-2.5) > 1e-12 {
		t.Fatalf("2x2→1x1 = %v, want 2.5", got)
	}
	// Bilinear: 2x2 → 1x1 is the mean too; 2 → 3 samples at source
	// coordinates -1/6 (clamped to 0), 0.5 and 7/6 (upper tap clamped).
	if got := bilinearResize([]float64{1, 2, 3, 4}, 1, 2, 2, 1, 1); math.Abs(got[0]-2.5) > 1e-12 {
		t.Fatalf("bilinear 2x2→1x1 = %v", got)
	}
	got = bilinearResize([]float64{0, 6}, 1, 1, 2, 1, 3)
	if want := []float64{0, 3, 6}; math.Abs(got[0]-want[0])+math.Abs(got[1]-want[1])+math.Abs(got[2]-want[2]) > 1e-12 {
		t.Fatalf("bilinear 2→3 = %v, want %v", got, want)
	}
}

// TestBicubicProperties: identity at the same size, constants preserved
// (the weights sum to one), and agreement with the reference forward pass's
// independent evaluation (a direct 4×4 weighted sum) over down- and upsampling.
func TestBicubicProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range [][4]int{{4, 4, 4, 4}, {4, 4, 3, 3}, {4, 4, 7, 5}, {37, 37, 16, 16}, {14, 14, 37, 37}, {3, 3, 1, 2}} {
		inH, inW, outH, outW := sz[0], sz[1], sz[2], sz[3]
		src := make([]float64, 2*inH*inW)
		for i := range src {
			src[i] = r.NormFloat64()
		}
		got := bicubicResize(src, 2, inH, inW, outH, outW)
		if inH == outH && inW == outW {
			for i := range got {
				if got[i] != src[i] {
					t.Fatalf("%v: not the identity at %d", sz, i)
				}
			}
		}
		cst := make([]float64, inH*inW)
		for i := range cst {
			cst[i] = 0.75
		}
		for i, v := range bicubicResize(cst, 1, inH, inW, outH, outW) {
			if math.Abs(v-0.75) > 1e-12 {
				t.Fatalf("%v: constant plane became %v at %d", sz, v, i)
			}
		}
		if inH != inW {
			continue
		}
		// resizedPos works on [tokens+g², dim] with channels last.
		const dim = 2
		pos := make([]float64, (1+inH*inW)*dim)
		pos[0], pos[1] = 9, -9
		for c := 0; c < dim; c++ {
			for p := 0; p < inH*inW; p++ {
				pos[(1+p)*dim+c] = src[c*inH*inW+p]
			}
		}
		ref := (&refNet{}).resizedPos(pos, 1, dim, outH, outW)
		for c := 0; c < dim; c++ {
			for p := 0; p < outH*outW; p++ {
				if d := math.Abs(ref[(1+p)*dim+c] - got[c*outH*outW+p]); d > 1e-12 {
					t.Fatalf("%v: channel %d pixel %d differs from the direct evaluation by %g", sz, c, p, d)
				}
			}
		}
		f32 := make([]float32, len(pos))
		for i, v := range pos {
			f32[i] = float32(v)
		}
		res, err := resizePosEmbed(f32, 1, dim, outH, outW)
		if err != nil {
			t.Fatal(err)
		}
		if res[0] != 9 || res[1] != -9 || len(res) != (1+outH*outW)*dim {
			t.Fatalf("%v: token rows or length wrong: %v...", sz, res[:2])
		}
	}
	if _, err := resizePosEmbed(make([]float32, 2*(1+5)), 1, 2, 2, 2); err == nil {
		t.Fatal("a non-square grid of 5 patches was accepted")
	}
}

// TestExportFromCheckpointEqualsArtifact: exporting a checkpoint at a
// quantized precision runs convert first, so its graph and weights are
// byte-identical to converting with the same options and exporting that
// artifact.
func TestExportFromCheckpointEqualsArtifact(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "deit")
	for _, p := range []Precision{FP16, Int8, Int4, NF4} {
		direct, _ := exportTo(t, src, ExportOptions{Precision: ExportPrecision(p)})
		art := filepath.Join(t.TempDir(), "art")
		if _, err := Convert(context.Background(), src, art, Options{Precision: p}); err != nil {
			t.Fatal(err)
		}
		via, m := exportTo(t, art, ExportOptions{})
		if m.Precision != ExportPrecision(p) {
			t.Fatalf("%s: artifact exported at %s", p, m.Precision)
		}
		for _, f := range []string{"model.onnx", "model.onnx.data"} {
			a, err := manifest.HashFile(filepath.Join(direct, f))
			if err != nil {
				t.Fatal(err)
			}
			b, err := manifest.HashFile(filepath.Join(via, f))
			if err != nil {
				t.Fatal(err)
			}
			if a.SHA256 != b.SHA256 {
				t.Errorf("%s: %s differs between checkpoint and artifact exports", p, f)
			}
		}
		if _, err := os.Stat(filepath.Join(direct, "convert.tmp")); err == nil {
			t.Errorf("%s: temporary artifact left in the export", p)
		}
	}
}

// TestExportDeterministic: the same export twice gives the same bytes.
func TestExportDeterministic(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "beit")
	a, ma := exportTo(t, src, ExportOptions{Precision: ExportNF4})
	b, mb := exportTo(t, src, ExportOptions{Precision: ExportNF4})
	_, _ = a, b
	if len(ma.Files) != len(mb.Files) {
		t.Fatalf("files %v vs %v", ma.Files, mb.Files)
	}
	for i := range ma.Files {
		if ma.Files[i] != mb.Files[i] {
			t.Errorf("%s differs between runs", ma.Files[i].Path)
		}
	}
}

// TestExportReusesArtifactBytes reads the exported graph back and checks
// that every quantized Linear's initializers are the artifact's tensors
// byte for byte (int4 codes, scales; nf4 codes), or their exact transpose
// (int8 codes), and that the nf4 absmax equals bitsandbytes' restoration of
// the double-quantized scales.
func TestExportReusesArtifactBytes(t *testing.T) {
	src := filepath.Join(fixtures(t), "reference", "vit")
	const p = "vit.encoder.layer.1.intermediate.dense.weight"
	for _, prec := range []Precision{Int8, Int4, NF4} {
		art := filepath.Join(t.TempDir(), "art")
		if _, err := Convert(context.Background(), src, art, Options{Precision: prec}); err != nil {
			t.Fatal(err)
		}
		out, _ := exportTo(t, art, ExportOptions{})
		m, err := onnx.ReadFile(filepath.Join(out, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		ck := openCheckpoint(t, art)
		stored := func(name string) []byte {
			e, ok := ck.Lookup(name)
			if !ok {
				t.Fatalf("artifact has no %q", name)
			}
			b, err := readRaw(e)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		init := func(name string) []byte {
			ti := m.Graph.Initializer(name)
			if ti == nil {
				t.Fatalf("%s: graph has no initializer %q", prec, name)
			}
			b, err := ti.Data()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		switch prec {
		case Int8:
			want := transpose2D(stored(p), 64, 32)
			if !bytes.Equal(init(p+".T"), want) {
				t.Errorf("int8 codes are not the transpose of the artifact's")
			}
		case Int4:
			if !bytes.Equal(init(p), stored(p)) || !bytes.Equal(init(p+"_scale"), stored(p+"_scale")) {
				t.Errorf("int4 codes or scales differ from the artifact's")
			}
		case NF4:
			if !bytes.Equal(init(p), stored(p)) {
				t.Errorf("nf4 codes differ from the artifact's")
			}
			codes, nested := stored(p+".absmax"), stored(p+".nested_absmax")
			nf := make([]float32, len(nested)/4)
			for i := range nf {
				nf[i] = math.Float32frombits(binary.LittleEndian.Uint32(nested[4*i:]))
			}
			var st nf4State
			if err := json.Unmarshal(stored(p+".quant_state.bitsandbytes__nf4"), &st); err != nil {
				t.Fatal(err)
			}
			dm := quant.DynamicMap(true)
			got := init(p + ".absmax")
			for i, c := range codes {
				// bitsandbytes: dequantize_blockwise(absmax, nested) + offset, in float32.
				want := float32(dm[c]*nf[i/256]) + float32(*st.NestedOffset)
				if g := math.Float32frombits(binary.LittleEndian.Uint32(got[4*i:])); g != want {
					t.Fatalf("nf4 absmax[%d] = %v, bitsandbytes restores %v", i, g, want)
				}
			}
		}
		ck.Close()
	}
}
