package convert

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
)

// TestRegistry checks the families table: every architecture registered once
// under its family's name, every family with a tensor list, the exportable
// ones with a graph, every preset's config naming an architecture of its
// family that yields a tensor list; and that buildRegistry and buildPresets
// refuse duplicates and misplaced presets.
func TestRegistry(t *testing.T) {
	var names []string
	seen := map[string]bool{}
	for _, f := range families {
		if f.Name == "" || seen[f.Name] {
			t.Errorf("family name %q empty or repeated", f.Name)
		}
		seen[f.Name] = true
		for _, fa := range f.Archs {
			names = append(names, fa.Name)
			a, err := LookupArch(fa.Name)
			if err != nil {
				t.Fatal(err)
			}
			if a.Family != f.Name || a.family != f || a.Prefix != fa.Prefix || !slices.Equal(a.Head, fa.Head) {
				t.Errorf("%s: registered as family %q prefix %q head %v, declared in %q with %q %v", fa.Name, a.Family, a.Prefix, a.Head, f.Name, fa.Prefix, fa.Head)
			}
			if (a.graph() != nil) != slices.Contains(Exportable(), a.Name) {
				t.Errorf("%s: graph %v but Exportable %v", a.Name, a.graph() != nil, Exportable())
			}
		}
		for _, p := range f.Presets {
			cfg, err := ParseConfig(p.Name, mustJSON(t, p.Config))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Architecture() != p.Arch {
				t.Errorf("preset %s: config architecture %q, preset says %q", p.Name, cfg.Architecture(), p.Arch)
			}
			a, _ := LookupArch(p.Arch)
			if specs, err := a.Tensors(cfg, p.Pooler); err != nil || len(specs) == 0 {
				t.Errorf("preset %s: %d tensors, %v", p.Name, len(specs), err)
			}
			if got, err := LookupPreset(p.Name); got != p || err != nil {
				t.Errorf("preset %s: LookupPreset %v, %v", p.Name, got, err)
			}
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, Supported()) {
		t.Errorf("Supported() = %v, families declare %v", Supported(), names)
	}

	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	twice := &family{Name: "x", Archs: []Arch{{Name: "A"}, {Name: "A"}}, Tensors: vitTensors}
	panics("duplicate architecture", func() { buildRegistry([]*family{twice}) })
	panics("family without tensor list", func() { buildRegistry([]*family{{Name: "y", Archs: []Arch{{Name: "B"}}}}) })
	p := &Preset{Name: "p", Arch: "ViTModel"}
	panics("preset of another family", func() { buildPresets([]*family{{Name: "z", Archs: []Arch{{Name: "C"}}, Presets: []*Preset{p}}}) })
	dup := &family{Name: "vit2", Archs: []Arch{{Name: "ViTModel"}}, Presets: []*Preset{p, p}}
	panics("duplicate preset", func() { buildPresets([]*family{dup}) })
	if len(buildPresets([]*family{{Name: "v", Archs: []Arch{{Name: "ViTModel"}}, Presets: []*Preset{p}}})) != 1 {
		t.Error("buildPresets dropped a valid preset")
	}
}

func TestLookupArchListsSupported(t *testing.T) {
	_, err := LookupArch("SwinForImageClassification")
	if err == nil {
		t.Fatal("unknown architecture accepted")
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error class: %v", err)
	}
	for _, n := range []string{"ViTForImageClassification", "BeitForImageClassification", "Dinov2Model"} {
		if _, err := LookupArch(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestNormFeeds checks each family's NormFeeds against the graph export
// builds from the same checkpoint: the LayerNormalization nodes whose output
// a MatMul reads directly, with those MatMuls' weights, must be exactly the
// listed feeds, in graph order. Sources: every reference checkpoint, plus
// the configs that change which feeds exist (SwiGLU, BEiT's CLS pooling).
func TestNormFeeds(t *testing.T) {
	fx := fixtures(t)
	srcs := map[string]string{}
	for _, name := range referenceModels {
		srcs[name] = filepath.Join(fx, "reference", name)
	}
	srcs["dinov2-swiglu"] = randomCheckpoint(t, dinov2VariantConfig("Dinov2Model", map[string]any{"use_swiglu_ffn": true}), false, 1)
	srcs["beit-cls-pooling"] = randomCheckpoint(t, beitVariantConfig(map[string]any{"use_mean_pooling": false}), false, 1)
	for _, name := range slices.Sorted(maps.Keys(srcs)) {
		t.Run(name, func(t *testing.T) {
			dir := srcs[name]
			cfg, a := loadArch(t, dir)
			want, err := a.normFeeds(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := exportTo(t, dir, ExportOptions{Precision: ExportFP32, Plain: true})
			m, err := onnx.ReadFile(filepath.Join(out, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			got := graphNormFeeds(m.Graph)
			if len(got) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("graph has feeds\n%v\nNormFeeds lists\n%v", got, want)
			}
		})
	}
}

// graphNormFeeds reads the LayerNorm → Linear feeds off an fp32 graph: a
// LayerNormalization's scale initializer is P.weight, a Linear's MatMul
// weight P.weight.T (builder.layerNorm, builder.linear).
func graphNormFeeds(g *onnx.Graph) []normFeed {
	readers := map[string][]*onnx.Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			readers[in] = append(readers[in], n)
		}
	}
	var out []normFeed
	for _, n := range g.Nodes {
		if n.OpType != "LayerNormalization" {
			continue
		}
		f := normFeed{Norm: strings.TrimSuffix(n.Inputs[1], ".weight")}
		for _, r := range readers[n.Outputs[0]] {
			if r.OpType == "MatMul" && r.Inputs[0] == n.Outputs[0] {
				f.Linears = append(f.Linears, strings.TrimSuffix(r.Inputs[1], ".weight.T"))
			}
		}
		if len(f.Linears) > 0 {
			out = append(out, f)
		}
	}
	return out
}
