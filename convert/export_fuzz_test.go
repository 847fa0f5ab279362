package convert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/quantpack/quantpack/internal/manifest"
)

// FuzzReadArtifactManifest: export's reader of a convert artifact's
// quantpack.json never panics, and what it accepts survives a round trip.
// Seeds: a real artifact's manifest and small edits of it.
func FuzzReadArtifactManifest(f *testing.F) {
	f.Add([]byte(`{"format":"quantpack-artifact/1","precision":"int8","tensors":[{"name":"a","scheme":"int8-rowwise","shape":[16,16]}]}`))
	f.Add([]byte(`{"format":"quantpack-artifact/1","tensors":[{"name":"a"},{"name":"a"}]}`))
	f.Add([]byte(`{"format":"quantpack-onnx/1"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"format":"quantpack-artifact/1","tensors":[null]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, manifest.Name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := readArtifactManifest(dir)
		if err != nil {
			return
		}
		if m.Format != ManifestFormat {
			t.Fatalf("accepted format %q", m.Format)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, again, 0o644); err != nil {
			t.Fatal(err)
		}
		m2, err := readArtifactManifest(dir)
		if err != nil {
			t.Fatalf("re-read of an accepted manifest: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest")
		}
	})
}

// FuzzExportImageSize: any preprocessor_config.json gives an error or a
// size within limits, never a panic.
func FuzzExportImageSize(f *testing.F) {
	f.Add([]byte(`{"do_center_crop": true, "crop_size": {"height": 224, "width": 224}, "size": {"shortest_edge": 256}}`))
	f.Add([]byte(`{"size": {"height": 384, "width": 384}}`))
	f.Add([]byte(`{"size": 224, "crop_size": 224, "do_center_crop": false}`))
	f.Add([]byte(`{"size": -1}`))
	f.Add([]byte(`{"crop_size": {"height": 1e99}}`))
	cfg, err := ParseConfig("config.json", []byte(`{"image_size": 32, "model_type": "deit"}`))
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		h, w, from, err := exportImageSize(dir, cfg, 0)
		if err != nil {
			return
		}
		if h <= 0 || w <= 0 || h > maxImage || w > maxImage || from == "" {
			t.Fatalf("size %dx%d from %q", h, w, from)
		}
	})
}
