package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/hub"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/testenv"
)

func TestParseFrontMatter(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{"---\nlicense: apache-2.0\ntags:\n- vision\n---\n# x\n", map[string]string{"license": "apache-2.0"}},
		{"---\r\nlicense: 'mit'\r\n---\r\n", map[string]string{"license": "mit"}},
		{"---\nlicense: other\nlicense_name: \"my-license\" # a comment\nlicense_link: LICENSE.md\n---\n",
			map[string]string{"license": "other", "license_name": "my-license", "license_link": "LICENSE.md"}},
		{"---\nlicense:\n- mit\n- apache-2.0\n---\n", map[string]string{}}, // a list: not copied
		{"---\nlicense: mit\n", nil},                                       // never closed: not front matter
		{"# no front matter\nlicense: mit\n", nil},
		{"", nil},
	}
	for _, c := range cases {
		got := parseFrontMatter([]byte(c.in))
		if len(got) != len(c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("%q: got %v, want %v", c.in, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", c.in, k, got[k], v)
			}
		}
	}
}

func FuzzParseFrontMatter(f *testing.F) {
	f.Add([]byte("---\nlicense: apache-2.0\n---\n"))
	f.Add([]byte("---\nlicense: \"a\\\"b\"\nlicense_name: x\n---\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range parseFrontMatter(b) {
			// Whatever is copied must stay one YAML scalar in our card.
			if !licenseKeys[k] || strings.ContainsAny(v, "\n") {
				t.Fatalf("copied %q: %q", k, v)
			}
			line := k + ": " + yamlString(v)
			if strings.Count(line, "\n") != 0 {
				t.Fatalf("card line %q spans lines", line)
			}
		}
	})
}

func TestYAMLString(t *testing.T) {
	for in, want := range map[string]string{
		"apache-2.0": "apache-2.0", "acme/tiny-vit": "acme/tiny-vit", "yes": `"yes"`,
		"a: b": `"a: b"`, "": `""`, "x # y": `"x # y"`,
	} {
		if got := yamlString(in); got != want {
			t.Errorf("yamlString(%q) = %s, want %s", in, got, want)
		}
	}
}

// copyFixture copies the tiny reference ViT's config and weights, with card
// as its source card when not empty.
func copyFixture(t *testing.T, card string) string {
	t.Helper()
	src := filepath.Join(fixtures(t), "reference", "vit")
	dir := filepath.Join(t.TempDir(), "vit")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.json", "model.safetensors"} {
		testenv.CopyFile(t, filepath.Join(src, name), filepath.Join(dir, name))
	}
	if card != "" {
		os.WriteFile(filepath.Join(dir, "README.md"), []byte(card), 0o644)
	}
	return dir
}

func TestConvertCard(t *testing.T) {
	dir := copyFixture(t, "---\nlicense: cc-by-4.0\n---\n# source card\n")
	h, err := manifest.HashFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	src := &hub.Source{Repo: "acme/tiny-vit", Revision: "main", Commit: strings.Repeat("ab", 20),
		Files: []hub.File{{Path: "model.safetensors", Size: h.Size, SHA256: h.SHA256, Blob: h.SHA256}}}
	out := filepath.Join(t.TempDir(), "out")
	m, err := Convert(context.Background(), dir, out, Options{Precision: NF4, DoubleQuant: SwitchOn, Hub: src})
	if err != nil {
		t.Fatal(err)
	}
	card, err := os.ReadFile(filepath.Join(out, CardName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"---\nbase_model: acme/tiny-vit\nbase_model_relation: quantized\nlibrary_name: transformers\nlicense: cc-by-4.0\ntags:\n- quantpack\n- nf4\n---\n",
		"| size |", "| worst SQNR |", src.Commit,
	} {
		if !strings.Contains(string(card), want) {
			t.Errorf("card lacks %q:\n%s", want, card)
		}
	}
	if m.Hub != src {
		t.Error("manifest does not carry the Hub source")
	}
	// The card is listed, with its hash, like every other file.
	var ok bool
	for _, f := range m.Files {
		if f.Path == CardName {
			ch, _ := manifest.HashFile(filepath.Join(out, CardName))
			ok = f.SHA256 == ch.SHA256
		}
	}
	if !ok {
		t.Error("card missing from the manifest or hash differs")
	}

	// A local source: no base_model, no license when the source has no card.
	out2 := filepath.Join(t.TempDir(), "out")
	if _, err := Convert(context.Background(), copyFixture(t, ""), out2, Options{Precision: Int8}); err != nil {
		t.Fatal(err)
	}
	card2, _ := os.ReadFile(filepath.Join(out2, CardName))
	if strings.Contains(string(card2), "base_model") || strings.Contains(string(card2), "license") ||
		!strings.Contains(string(card2), "- int8\n") {
		t.Errorf("local card:\n%s", card2)
	}
}

// TestConvertHubMismatch: a cached file that does not hash to the Hub's
// record is corrupt input, and nothing is written.
func TestConvertHubMismatch(t *testing.T) {
	dir := copyFixture(t, "")
	src := &hub.Source{Repo: "acme/tiny-vit", Commit: strings.Repeat("ab", 20),
		Files: []hub.File{{Path: "model.safetensors", SHA256: strings.Repeat("0", 64)}}}
	out := filepath.Join(t.TempDir(), "out")
	_, err := Convert(context.Background(), dir, out, Options{Precision: FP16, Hub: src})
	if !errors.Is(err, ErrHubMismatch) {
		t.Fatalf("err = %v, want ErrHubMismatch", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}
