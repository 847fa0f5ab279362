package convert

import (
	"errors"
	"slices"
	"testing"
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
