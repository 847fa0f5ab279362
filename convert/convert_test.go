package convert

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// fixtures returns ../shared/fixtures, skipping (failing in CI) when absent.
func fixtures(t testing.TB) string { return testenv.Fixtures(t, "") }

// openCheckpoint opens the checkpoint or artifact at path (a directory or a
// .safetensors file) for the rest of the test.
func openCheckpoint(t testing.TB, path string) *safetensors.Checkpoint {
	t.Helper()
	ck, err := safetensors.OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

// referenceModels lists the reference checkpoints of ../shared/fixtures.
var referenceModels = []string{"vit", "vit-base", "deit", "deit-distilled", "dinov2", "dinov2-cls", "beit", "mobilevit"}

// TestTensorListsMatchFixtures checks each family's expected tensor list
// against checkpoints written by transformers' save_pretrained: a wrong name
// or shape here would break both synth and the graph builders.
func TestTensorListsMatchFixtures(t *testing.T) {
	fx := fixtures(t)
	for _, name := range referenceModels {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(fx, "reference", name)
			cfg, err := LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			a, err := LookupArch(cfg.Architecture())
			if err != nil {
				t.Fatal(err)
			}
			ck := openCheckpoint(t, dir)
			_, hasPooler := ck.Lookup("pooler.dense.weight")
			want, err := a.Tensors(cfg, hasPooler)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]int64{}
			for _, e := range ck.Tensors() {
				got[e.Name] = e.Shape
			}
			for _, w := range want {
				g, ok := got[w.Name]
				if !ok {
					t.Errorf("expected tensor %s missing from fixture", w.Name)
					continue
				}
				if !slices.Equal(g, w.Shape) {
					t.Errorf("%s: fixture shape %v, expected %v", w.Name, g, w.Shape)
				}
				delete(got, w.Name)
			}
			for n := range got {
				t.Errorf("fixture tensor %s not in the expected list", n)
			}
		})
	}
}

func TestPolicyTable(t *testing.T) {
	vit, _ := LookupArch("ViTForImageClassification")
	mvit, _ := LookupArch("MobileViTForImageClassification")
	ti := func(name string, dt safetensors.DType, shape ...int64) safetensors.TensorInfo {
		return safetensors.TensorInfo{Name: name, DType: dt, Shape: shape}
	}
	cases := []struct {
		arch *Arch
		keep []string
		t    safetensors.TensorInfo
		role Role
		int8 string
		nf4  string
		fp16 string
	}{
		{vit, nil, ti("vit.encoder.layer.0.attention.attention.query.weight", safetensors.F32, 768, 768), RoleLinear, SchemeInt8, SchemeNF4, SchemeFP16},
		{vit, nil, ti("vit.encoder.layer.0.attention.attention.query.bias", safetensors.F32, 768), RoleFloat, SchemeFP16, SchemeFP16, SchemeFP16},
		{vit, nil, ti("vit.embeddings.patch_embeddings.projection.weight", safetensors.F32, 768, 3, 16, 16), RoleConv, SchemeFP16, SchemeFP16, SchemeFP16},
		{vit, nil, ti("classifier.weight", safetensors.F32, 1000, 768), RoleHead, SchemeFP16, SchemeFP16, SchemeFP16},
		{vit, nil, ti("vit.embeddings.position_embeddings", safetensors.F32, 1, 197, 768), RoleFloat, SchemeFP16, SchemeFP16, SchemeFP16},
		{vit, nil, ti("tiny.weight", safetensors.F32, 8, 768), RoleFloat, SchemeFP16, SchemeFP16, SchemeFP16},
		{vit, []string{"vit.encoder.layer.0"}, ti("vit.encoder.layer.0.output.dense.weight", safetensors.F32, 768, 3072), RoleKeep, SchemeFP16, SchemeFP16, SchemeFP16},
		{vit, []string{"*.query.weight"}, ti("vit.encoder.layer.3.attention.attention.query.weight", safetensors.F32, 768, 768), RoleKeep, SchemeFP16, SchemeFP16, SchemeFP16},
		{mvit, nil, ti("mobilevit.conv_stem.convolution.weight", safetensors.F32, 16, 3, 3, 3), RoleConv, SchemeInt8Ch, SchemeInt8Ch, SchemeFP16},
		{mvit, nil, ti("mobilevit.conv_stem.normalization.num_batches_tracked", safetensors.I64), RoleOther, SchemeCopy, SchemeCopy, SchemeCopy},
		{nil, nil, ti("x.weight", safetensors.BF16, 64, 64), RoleLinear, SchemeInt8, SchemeNF4, SchemeFP16},
	}
	for _, c := range cases {
		role := RoleOf(c.arch, c.keep, c.t)
		if role != c.role {
			t.Errorf("%s: role %s, want %s", c.t.Name, role, c.role)
			continue
		}
		for p, want := range map[Precision]string{Int8: c.int8, NF4: c.nf4, FP16: c.fp16} {
			if got := SchemeFor(c.arch, role, p, SchemeFP16); got != want {
				t.Errorf("%s at %s: scheme %s, want %s", c.t.Name, p, got, want)
			}
		}
	}
}
