package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenOutput is the sha256 of every file an output directory holds
// (quantpack.json aside: it names the temporary source path) and a sha256
// prefix of every tensor's bytes, so a changed byte names its tensor.
type goldenOutput struct {
	Files   map[string]string `json:"files"`
	Tensors map[string]string `json:"tensors"`
}

// goldenFixtures are the families whose code paths differ: ViT (Linear,
// patch embedding), MobileViT (convolutions, BatchNorm) and DINOv2 (layer
// scale, SwiGLU-free MLP, interpolated position embeddings).
var goldenFixtures = []string{"vit", "mobilevit", "dinov2"}

// TestGoldenOutputs: convert at every precision and export at every graph
// form write the bytes recorded in testdata/golden/<fixture>.json. Output
// is deterministic (other tests prove that), so a difference here is a
// changed byte: a bug, or a deliberate change to regenerate with
//
//	go test ./convert -run TestGoldenOutputs -update
//
// and explain in the commit.
func TestGoldenOutputs(t *testing.T) {
	for _, fx := range goldenFixtures {
		t.Run(fx, func(t *testing.T) {
			src := testenv.Fixtures(t, filepath.Join("reference", fx))
			got := map[string]goldenOutput{}
			for _, p := range []Precision{FP16, BF16, Int8, Int4, NF4} {
				out := filepath.Join(t.TempDir(), "art")
				if _, err := Convert(context.Background(), src, out, goldenConvertOptions(p)); err != nil {
					t.Fatalf("convert %s: %v", p, err)
				}
				got["convert-"+string(p)] = hashOutput(t, out)
			}
			// An explicit --block-size 128 pads every K of these narrow
			// fixtures to 128, as the default did before the per-tensor
			// rule: its golden entries are the old default's bytes.
			out := filepath.Join(t.TempDir(), "art128")
			if _, err := Convert(context.Background(), src, out, Options{Precision: Int4, BlockSize: 128}); err != nil {
				t.Fatalf("convert int4 block 128: %v", err)
			}
			got["convert-int4-block128"] = hashOutput(t, out)
			for _, v := range []struct {
				name string
				opt  ExportOptions
			}{
				{"fp32", ExportOptions{Precision: ExportFP32}},
				{"fp16", ExportOptions{Precision: ExportFP16}},
				{"int8", ExportOptions{Precision: ExportInt8}},
				{"int8-qdq", ExportOptions{Precision: ExportInt8, Int8Mode: Int8QDQ}},
				{"int4", ExportOptions{Precision: ExportInt4}},
				{"int4-block128", ExportOptions{Precision: ExportInt4, Convert: Options{BlockSize: 128}}},
				{"nf4", ExportOptions{Precision: ExportNF4}},
			} {
				out := filepath.Join(t.TempDir(), "onnx")
				if _, err := Export(context.Background(), src, out, v.opt); err != nil {
					t.Fatalf("export %s: %v", v.name, err)
				}
				got["export-"+v.name] = hashOutput(t, out)
			}
			path := filepath.Join("testdata", "golden", fx+".json")
			if *update {
				b, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			var want map[string]goldenOutput
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			for _, k := range sortedUnion(got, want) {
				diffGolden(t, k, want[k], got[k])
			}
		})
	}
}

func sortedUnion[V any](a, b map[string]V) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func diffGolden(t *testing.T, output string, want, got goldenOutput) {
	t.Helper()
	for _, k := range sortedUnion(got.Tensors, want.Tensors) {
		if got.Tensors[k] != want.Tensors[k] {
			t.Errorf("%s: tensor %s: sha256 %.12s, golden %.12s", output, k, got.Tensors[k], want.Tensors[k])
		}
	}
	for _, k := range sortedUnion(got.Files, want.Files) {
		if got.Files[k] != want.Files[k] {
			t.Errorf("%s: file %s: sha256 %.12s, golden %.12s", output, k, got.Files[k], want.Files[k])
		}
	}
}

// hashOutput hashes a convert artifact (safetensors tensors) or an export
// (ONNX initializers, read back with the package's own decoder).
func hashOutput(t *testing.T, dir string) goldenOutput {
	t.Helper()
	g := goldenOutput{Files: map[string]string{}, Tensors: map[string]string{}}
	files, err := manifest.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		g.Files[f.Path] = f.SHA256
	}
	// Tensors keep 64 bits of their sha256: plenty to notice a change,
	// a quarter of the testdata.
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:8]) }
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
		m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for _, init := range m.Graph.Initializers {
			b, err := init.Data()
			if err != nil {
				t.Fatal(err)
			}
			g.Tensors[init.Name] = sum(b)
		}
		return g
	}
	ck := openCheckpoint(t, dir)
	for _, e := range ck.Tensors() {
		b, err := e.File.Bytes(e.TensorInfo)
		if err != nil {
			t.Fatal(err)
		}
		g.Tensors[e.Name] = sum(b)
	}
	return g
}
