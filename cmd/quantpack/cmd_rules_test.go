package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify"
)

// exportJSON runs quantpack export with args and decodes its --json output.
func exportJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out := runCLI(t, append(append([]string{"export"}, args...), "--json")...)
	if code != ExitOK {
		t.Fatalf("export %v: exit %d\n%s", args, code, out)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("export --json: %v\n%s", err, out)
	}
	return m
}

// TestExportDoubleQuantFlag: export's conversion honours --double-quant
// both ways, as convert does (issue 12 defect 3: =false was ignored, the
// output byte-identical to the default).
func TestExportDoubleQuantFlag(t *testing.T) {
	src := repoFixture(t, filepath.Join("reference", "vit"))
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, true}, // nf4's default
		{[]string{"--double-quant=false"}, false},
		{[]string{"--double-quant"}, true},
	} {
		out := filepath.Join(t.TempDir(), "out")
		m := exportJSON(t, append([]string{src, "-o", out, "--precision", "nf4"}, c.args...)...)
		got, _ := jpath(m, "source.scheme.double_quant")
		if b, _ := got.(bool); b != c.want {
			t.Errorf("%v: source.scheme.double_quant = %v, want %v", c.args, got, c.want)
		}
		// convert with the same flags records the same scheme.
		art := filepath.Join(t.TempDir(), "art")
		code, cout := runCLI(t, append([]string{"convert", src, "-o", art, "--precision", "nf4", "--no-stats", "--json"}, c.args...)...)
		if code != ExitOK {
			t.Fatalf("convert %v: exit %d\n%s", c.args, code, cout)
		}
		b, err := os.ReadFile(filepath.Join(art, "quantpack.json"))
		if err != nil {
			t.Fatal(err)
		}
		var am struct {
			Scheme struct {
				DoubleQuant bool `json:"double_quant"`
			} `json:"scheme"`
		}
		if err := json.Unmarshal(b, &am); err != nil {
			t.Fatal(err)
		}
		if am.Scheme.DoubleQuant != c.want {
			t.Errorf("convert %v: scheme.double_quant = %v, want %v", c.args, am.Scheme.DoubleQuant, c.want)
		}
	}
}

// TestExportImageSizeMatchesVerify: the size export builds the graph for is
// the size verify prepares images at, for processor files that leave keys to
// their class defaults (issue 12 defect 4: a DeiT file without
// do_center_crop, whose class default is true, exported at the resize size
// while verify cropped).
func TestExportImageSizeMatchesVerify(t *testing.T) {
	cases := []struct {
		name, pre string
		want      int
	}{
		// DeiTImageProcessor: do_center_crop defaults to true.
		{"deit crop by class default", `{"image_processor_type": "DeiTImageProcessor", "size": {"height": 48, "width": 48}, "crop_size": {"height": 32, "width": 32}}`, 32},
		// ...and crop_size to 224: the crop is taken from the class.
		{"deit class crop size", `{"image_processor_type": "DeiTImageProcessor", "size": 256}`, 224},
		{"deit crop off", `{"image_processor_type": "DeiTImageProcessor", "do_center_crop": false, "size": 48}`, 48},
		// ViTImageProcessor ignores do_center_crop (not in its __init__).
		{"vit ignores crop", `{"image_processor_type": "ViTImageProcessor", "do_center_crop": true, "size": 40, "crop_size": 32}`, 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := testenv.CopyDir(t, repoFixture(t, filepath.Join("reference", "deit")))
			if err := os.WriteFile(filepath.Join(src, "preprocessor_config.json"), []byte(c.pre), 0o644); err != nil {
				t.Fatal(err)
			}
			pc, err := verify.LoadPreprocessorConfig(src)
			if err != nil {
				t.Fatal(err)
			}
			vh, vw := pc.Size.Height, pc.Size.Width
			if pc.DoCenterCrop {
				vh, vw = pc.CropSize.Height, pc.CropSize.Width
			}
			m := exportJSON(t, src, "-o", filepath.Join(t.TempDir(), "out"))
			h, w := jnum(t, m, "image.height"), jnum(t, m, "image.width")
			if int(h) != vh || int(w) != vw || vh != c.want {
				t.Errorf("export image %gx%g, verify prepares %dx%d, want %d", h, w, vh, vw, c.want)
			}
		})
	}
}
