package convert

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// BenchmarkInt4BlockForK is the measurement behind int4BlockFor's floor
// (docs/accuracy.md, "Per-tensor block size"): ONNX Runtime's CPU
// MatMulNBits (accuracy level 4, zero points, as the default writes) on one
// transformer layer's Linears whose K is not a multiple of 128, at each
// block size, the padded block 128 included. The variants of one shape run
// interleaved round by round in the same process, and the metrics are each
// block's p50 over block 128's: ratios within one run, which a shared
// machine's load moves far less than the times themselves.
//
//	go test ./convert -run '^$' -bench Int4BlockForK -benchtime 20x
func BenchmarkInt4BlockForK(b *testing.B) {
	orttest.Require(b)
	layers := []struct {
		name   string
		tokens int64
		kn     [][2]int64 // (K, N) of each Linear
	}{
		// DeiT-Tiny: hidden 192, MLP 768, 197 tokens. q, k, v, out,
		// fc1 read K = 192; fc2 (K = 768) is a multiple of 128 and
		// left out.
		{"deit-tiny-K192", 197, [][2]int64{{192, 192}, {192, 192}, {192, 192}, {192, 192}, {192, 768}}},
		// MobileViT-S's first transformer: hidden 144, MLP 288, 256
		// tokens (2×2 patches of a 32×32 map, batched as 4×64).
		{"mobilevit-K144", 256, [][2]int64{{144, 144}, {144, 144}, {144, 144}, {144, 144}, {144, 288}, {288, 144}}},
	}
	// 0 is the float32 MatMul the int4 forms are meant to beat.
	blocks := []int64{0, 16, 32, 64, 128}
	for _, l := range layers {
		for _, batch := range []int64{1, 8} {
			b.Run(fmt.Sprintf("%s/batch=%d", l.name, batch), func(b *testing.B) {
				m := batch * l.tokens
				sess := make([]*ort.Session, len(blocks))
				var inputs []verify.Tensor
				for i, bs := range blocks {
					model, in := blockBenchModel(b, l.kn, m, bs)
					s, err := ort.OpenBytes(model, ort.Options{IntraOpThreads: benchThreads()})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					sess[i], inputs = s, in
				}
				times := make([][]time.Duration, len(blocks))
				run := func(i int) time.Duration {
					t0 := time.Now()
					if _, err := sess[i].Run(context.Background(), inputs); err != nil {
						b.Fatal(err)
					}
					return time.Since(t0)
				}
				for i := range sess { // warm-up: prepacking, allocations
					run(i)
					run(i)
				}
				b.ResetTimer()
				for r := 0; r < b.N; r++ {
					for i := range sess {
						// Rotate the start so that no block always runs
						// first (after another's cache effects).
						j := (i + r) % len(sess)
						times[j] = append(times[j], run(j))
					}
				}
				b.StopTimer()
				p50 := make([]float64, len(blocks))
				for i, ts := range times {
					sort.Slice(ts, func(a, c int) bool { return ts[a] < ts[c] })
					p50[i] = float64(ts[len(ts)/2].Microseconds()) / 1000
				}
				base := p50[len(blocks)-1]
				for i, bs := range blocks[:len(blocks)-1] {
					name := fmt.Sprintf("b%d/b128", bs)
					if bs == 0 {
						name = "fp32/b128"
					}
					b.ReportMetric(p50[i]/base, name)
				}
				b.ReportMetric(base, "b128-p50-ms")
			})
		}
	}
}

// blockBenchModel is a graph of independent MatMulNBits nodes, one per
// (K, N), each reading an [m, K] input, with random weights quantized
// asymmetrically at block bs (bs 0: float32 MatMul); it returns the model
// bytes and the inputs.
func blockBenchModel(b *testing.B, kn [][2]int64, m, bs int64) ([]byte, []verify.Tensor) {
	r := rand.New(rand.NewPCG(1, uint64(bs)))
	g := &onnx.Graph{Name: "int4-blocks"}
	inputs := map[int64]bool{}
	var in []verify.Tensor
	for i, d := range kn {
		k, n := d[0], d[1]
		x := fmt.Sprintf("x%d", k)
		if !inputs[k] {
			inputs[k] = true
			g.Inputs = append(g.Inputs, onnx.TensorValue(x, onnx.Float, onnx.Fixed(m), onnx.Fixed(k)))
			v := make([]float32, m*k)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			in = append(in, verify.Tensor{Name: x, DType: verify.Float32, Shape: []int64{m, k}, F32: v})
		}
		w := make([]float32, n*k)
		for j := range w {
			w[j] = float32(r.NormFloat64() * 0.02)
		}
		y := fmt.Sprintf("y%d", i)
		g.Outputs = append(g.Outputs, onnx.TensorValue(y, onnx.Float, onnx.Fixed(m), onnx.Fixed(n)))
		name := fmt.Sprintf("w%d", i)
		if bs == 0 {
			wt := make([]float32, k*n) // [K, N]
			for a := range n {
				for c := range k {
					wt[c*n+a] = w[a*k+c]
				}
			}
			g.Initializers = append(g.Initializers, onnx.TensorF32(name, []int64{k, n}, wt))
			g.AddNode("MatMul", []string{x, name}, []string{y})
			continue
		}
		p := quant.Int4Params{BlockSize: int(bs)}
		np, ns, nz := quant.Int4Sizes(int(n), int(k), p)
		codes, scales, zeros := make([]byte, np), make([]float32, ns), make([]byte, nz)
		if err := quant.QuantizeInt4(codes, scales, zeros, w, int(n), int(k), p); err != nil {
			b.Fatal(err)
		}
		kb := (k + bs - 1) / bs
		g.Initializers = append(g.Initializers,
			onnx.TensorU8(name, []int64{n, kb, bs / 2}, codes),
			onnx.TensorF32(name+"_scale", []int64{n, kb}, scales),
			onnx.TensorU8(name+"_zp", []int64{n, (kb + 1) / 2}, zeros))
		node := g.AddNode("MatMulNBits", []string{x, name, name + "_scale", name + "_zp"}, []string{y},
			onnx.AttrInt("K", k), onnx.AttrInt("N", n), onnx.AttrInt("bits", 4),
			onnx.AttrInt("block_size", bs), onnx.AttrInt("accuracy_level", DefaultInt4Accuracy))
		node.Domain = "com.microsoft"
	}
	model := &onnx.Model{IRVersion: 8, Opsets: []*onnx.OpsetID{onnx.Opset("", 17), onnx.Opset("com.microsoft", 1)},
		ProducerName: "quantpack bench", Graph: g}
	raw, err := model.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return raw, in
}
