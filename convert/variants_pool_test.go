package convert

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/internal/testenv"
)

// openVariantsPair opens src's variants twice: with the shared external
// data (the default) and with every initializer inline (the reference).
func openVariantsPair(t *testing.T, src string, precs ...Precision) (pooled, inline *Variants) {
	t.Helper()
	ctx := context.Background()
	var err error
	if pooled, err = OpenVariants(ctx, src, VariantOptions{Precisions: precs, TmpDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pooled.Close() })
	if inline, err = OpenVariants(ctx, src, VariantOptions{Precisions: precs, TmpDir: t.TempDir(), ExternalThreshold: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inline.Close() })
	if pooled.DataDir() == "" || inline.DataDir() != "" || inline.DataBytes() != 0 {
		t.Fatalf("data dirs: pooled %q, inline %q (%d bytes)", pooled.DataDir(), inline.DataDir(), inline.DataBytes())
	}
	return pooled, inline
}

// materialize decodes a variant graph and rebuilds every initializer as a
// plain raw tensor, reading external ones from dir: two graphs that differ
// only in where their bytes live encode the same afterwards.
func materialize(t *testing.T, model []byte, dir string) ([]byte, int) {
	t.Helper()
	m, err := onnx.Unmarshal(model)
	if err != nil {
		t.Fatal(err)
	}
	external := 0
	for i, x := range m.Graph.Initializers {
		var b []byte
		if x.External != nil && x.Raw == nil {
			if dir == "" {
				t.Fatalf("initializer %q is external in an inline graph", x.Name)
			}
			if x.External.Location != variantDataFile || x.External.Offset%onnx.DefaultAlign != 0 {
				t.Fatalf("initializer %q: reference %+v, want page-aligned in %s", x.Name, *x.External, variantDataFile)
			}
			f, err := os.Open(filepath.Join(dir, x.External.Location))
			if err != nil {
				t.Fatal(err)
			}
			b = make([]byte, x.External.Length)
			_, err = io.ReadFull(io.NewSectionReader(f, x.External.Offset, x.External.Length), b)
			f.Close()
			if err != nil {
				t.Fatalf("initializer %q: %v", x.Name, err)
			}
			external++
		} else if b, err = x.Data(); err != nil {
			t.Fatal(err)
		}
		m.Graph.Initializers[i] = onnx.TensorRaw(x.Name, x.DataType, x.Dims, b)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out, external
}

// TestVariantPoolMatchesInline: every variant graph with its large
// initializers in the shared data file is the inline graph byte for byte
// once the references are resolved — whole graphs at any mix, cut graphs,
// the FP32 graph with extra outputs — and building more variants after
// OpenVariants writes nothing new to the data file (every initializer a
// variant can use was written once, up front).
func TestVariantPoolMatchesInline(t *testing.T) {
	src := filepath.Join(testenv.Fixtures(t, "trained"), "vit-28")
	pooled, inline := openVariantsPair(t, src, Int4, Int8)
	layers := pooled.Layers()
	if len(layers) != 18 {
		t.Fatalf("%d layers, want vit-28's 18", len(layers))
	}
	size := pooled.DataBytes()
	all4, mixed := map[string]Precision{}, map[string]Precision{}
	for i, l := range layers {
		all4[l.Name] = Int4
		mixed[l.Name] = []Precision{Int4, Int8, FP32}[i%3]
	}
	cuts, _, err := pooled.Cuts()
	if err != nil {
		t.Fatal(err)
	}
	last := layers[len(layers)-1].Name
	if cuts[last] == "" {
		t.Fatalf("no cut before %s", last)
	}
	type build func(v *Variants) ([]byte, error)
	cases := []struct {
		name  string
		build build
	}{
		{"fp32", func(v *Variants) ([]byte, error) { return v.Build(nil, FP32) }},
		{"all int4", func(v *Variants) ([]byte, error) { return v.Build(all4, FP32) }},
		{"mixed", func(v *Variants) ([]byte, error) { return v.Build(mixed, FP32) }},
		{"one int8", func(v *Variants) ([]byte, error) { return v.Build(map[string]Precision{layers[4].Name: Int8}, FP32) }},
		{"cut", func(v *Variants) ([]byte, error) {
			return v.BuildCut(map[string]Precision{last: Int4}, FP32, cuts[last], []int64{50, 64})
		}},
		{"fp32 outputs", func(v *Variants) ([]byte, error) { return v.BuildFP32Outputs([]string{cuts[last]}) }},
	}
	for _, c := range cases {
		p, err := c.build(pooled)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		in, err := c.build(inline)
		if err != nil {
			t.Fatalf("%s inline: %v", c.name, err)
		}
		gotP, ext := materialize(t, p, pooled.DataDir())
		gotI, _ := materialize(t, in, "")
		if !bytes.Equal(gotP, gotI) {
			t.Errorf("%s: the pooled graph differs from the inline one once resolved", c.name)
		}
		// vit-28's Linear weights (64×64 and up: 16 KiB in fp32, 2 KiB of
		// int4 codes) are over the threshold: every variant has external
		// initializers, and its graph bytes are fewer than inline.
		if ext == 0 || len(p) >= len(in) {
			t.Errorf("%s: %d external initializers, %d graph bytes vs %d inline", c.name, ext, len(p), len(in))
		}
	}
	if got := pooled.DataBytes(); got != size {
		t.Errorf("the data file grew from %d to %d bytes after OpenVariants", size, got)
	}
}
