package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// exportTo exports src into a fresh directory and returns it.
func exportTo(t testing.TB, src string, opt ExportOptions) (string, *ExportManifest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "onnx")
	m, err := Export(context.Background(), src, out, opt)
	if err != nil {
		t.Fatalf("Export(%s, %+v): %v", src, opt, err)
	}
	return out, m
}

// runONNX runs dir/model.onnx on pixel_values of shape [batch, c, h, w] with
// 2 threads and returns the outputs by name.
func runONNX(t testing.TB, dir string, x []float32, shape []int64) map[string]verify.Tensor {
	t.Helper()
	return runONNXAt(t, dir, x, shape, ort.OptAll)
}

// runONNXAt runs at an ONNX Runtime graph optimization level.
func runONNXAt(t testing.TB, dir string, x []float32, shape []int64, level int) map[string]verify.Tensor {
	t.Helper()
	s, err := ort.Open(filepath.Join(dir, "model.onnx"), ort.Options{IntraOpThreads: 2, OptLevel: level})
	if err != nil {
		t.Fatalf("ort.Open: %v", err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), []verify.Tensor{{Name: "pixel_values", DType: verify.Float32, Shape: shape, F32: x}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	m := map[string]verify.Tensor{}
	for _, o := range out {
		m[o.Name] = o
	}
	return m
}

// readBin reads a raw little-endian float32 file.
func readBin(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// refManifest is a fixture's ref.json.
type refManifest struct {
	ModelClass string `json:"model_class"`
	Cases      []struct {
		Name  string `json:"name"`
		Input struct {
			File  string  `json:"file"`
			Shape []int64 `json:"shape"`
		} `json:"input"`
		Outputs map[string]struct {
			File  string  `json:"file"`
			Shape []int64 `json:"shape"`
		} `json:"outputs"`
	} `json:"cases"`
}

func readRef(t testing.TB, dir string) refManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r refManifest
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// agreement compares two float vectors.
type agreement struct {
	Cosine, MaxAbs float64
}

func compare(got []float32, want []float32) agreement {
	var dot, ng, nw, maxAbs float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		dot += g * w
		ng += g * g
		nw += w * w
		maxAbs = math.Max(maxAbs, math.Abs(g-w))
	}
	return agreement{Cosine: dot / math.Sqrt(ng*nw), MaxAbs: maxAbs}
}

func compare64(got []float32, want []float64) agreement {
	w := make([]float32, len(want))
	for i, v := range want {
		w[i] = float32(v)
	}
	return compare(got, w)
}

// top1 returns the argmax of each row of a [rows, n] matrix.
func top1(v []float32, n int) []int {
	out := make([]int, len(v)/n)
	for r := range out {
		best := 0
		for j := 1; j < n; j++ {
			if v[r*n+j] > v[r*n+best] {
				best = j
			}
		}
		out[r] = best
	}
	return out
}

// sortedOps lists "op=count" for test messages.
func sortedOps(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+strconv.Itoa(v))
	}
	sort.Strings(out)
	return out
}

// mustJSON marshals v (a preset's config, a test case) or fails the test.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// synthPreset writes a preset's checkpoint into a temporary directory.
func synthPreset(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if _, err := Synth(context.Background(), name, dir, 1, 2); err != nil {
		t.Fatal(err)
	}
	return dir
}

// matchesRefNet runs the export in out on x and requires every output within
// 1e-5 relative max-abs of the float64 forward pass on the weights of art
// (the artifact the export was made from): accuracy level 1 computes in
// float32, so the graph differs from the float64 pass by float32 rounding
// through the layers, far below one int4 step (~1e-2 relative).
func matchesRefNet(t *testing.T, label, out, art string, x []float32, shape []int64) {
	t.Helper()
	got := runONNXAt(t, out, x, shape, 0)
	for oname, want := range loadRefNet(t, art).forwardBatch(x, shape) {
		r := compare64(got[oname].F32, want)
		rel := r.MaxAbs / maxAbs64(want)
		t.Logf("%s %s: vs float64 reference rel-max-abs %.2g", label, oname, rel)
		if rel > 1e-5 {
			t.Errorf("%s %s: relative max-abs vs reference %.3g > 1e-5", label, oname, rel)
		}
	}
}
