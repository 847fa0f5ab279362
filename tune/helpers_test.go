package tune

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
)

// requireORT loads ONNX Runtime or skips (fails in CI).
func requireORT(t testing.TB) {
	t.Helper()
	lib, err := ort.LibraryPath("")
	if err != nil {
		testenv.SkipOrFail(t, "ONNX Runtime library not found: %v", err)
	}
	if err := ort.Init(lib); err != nil {
		testenv.SkipOrFail(t, "ONNX Runtime cannot be loaded: %v", err)
	}
}

func openBytes(model []byte, opt SessionOptions) (verify.Runner, error) {
	s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: max(opt.Threads, 1), ExternalDataDir: opt.DataDir})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openPath(path string) (verify.Runner, error) {
	s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// trained returns the trained vit-28 fixture and its calibration images.
func trained(t testing.TB) (model, calib string) {
	t.Helper()
	root := testenv.Fixtures(t, "trained")
	return filepath.Join(root, "vit-28"), filepath.Join(root, "calib")
}

// testSamples keeps the runs short: 60 calibration images, 6 per class
// (the loader takes them at an even stride over the class-sorted folder).
const testSamples = 60

// logitsOf runs the model at path on the inputs, one sample at a time (a
// different batching from the package's, so the comparison does not lean
// on it), and returns [N, dim] logits.
func logitsOf(t *testing.T, path string, in *Inputs) ([]float32, int) {
	t.Helper()
	r, err := openPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sl := 3 * in.H * in.W
	var out []float32
	dim := 0
	for i := 0; i < in.N; i++ {
		x := verify.Tensor{Name: r.Inputs()[0].Name, DType: verify.Float32, Shape: []int64{1, 3, int64(in.H), int64(in.W)},
			F32: in.X[i*sl : (i+1)*sl]}
		outs, err := r.Run(context.Background(), []verify.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Name == "logits" {
				out = append(out, o.F32...)
				dim = int(o.Shape[1])
			}
		}
	}
	return out, dim
}

// refMetrics is an independent float64 computation of the sensitivity
// metrics of candidate logits c against baseline logits b.
type refMetrics struct {
	kl, cos, agree, top1 float64
}

func reference(b, c []float32, dim int, labels []int) refMetrics {
	n := len(b) / dim
	var r refMetrics
	for i := 0; i < n; i++ {
		x, y := b[i*dim:(i+1)*dim], c[i*dim:(i+1)*dim]
		// Softmax in float64 with the max subtracted.
		p, q := softmax64(x), softmax64(y)
		kl := 0.0
		for k := range p {
			if p[k] > 0 {
				kl += p[k] * (math.Log(p[k]) - math.Log(q[k]))
			}
		}
		r.kl += math.Max(kl, 0)
		var dot, nx, ny float64
		for k := range x {
			dot += float64(x[k]) * float64(y[k])
			nx += float64(x[k]) * float64(x[k])
			ny += float64(y[k]) * float64(y[k])
		}
		r.cos += dot / math.Sqrt(nx*ny)
		if argmax64(x) == argmax64(y) {
			r.agree++
		}
		if argmax64(y) == labels[i] {
			r.top1++
		}
	}
	fn := float64(n)
	return refMetrics{kl: r.kl / fn, cos: r.cos / fn, agree: r.agree / fn, top1: r.top1 / fn}
}

func softmax64(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	out := make([]float64, len(x))
	s := 0.0
	for k, v := range x {
		out[k] = math.Exp(float64(v) - m)
		s += out[k]
	}
	for k := range out {
		out[k] /= s
	}
	return out
}

func argmax64(x []float32) int {
	best := 0
	for k, v := range x {
		if v > x[best] {
			best = k
		}
	}
	return best
}
