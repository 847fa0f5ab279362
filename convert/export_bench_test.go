package convert

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// Benchmarks of exported graphs in ONNX Runtime. The model is a synth
// preset: deit-tiny-patch16-224 by default (so CI's one-iteration run stays
// quick), QUANTPACK_BENCH_PRESET to choose another (docs/perf.md uses
// vit-base-patch16-224). Threads: QUANTPACK_BENCH_THREADS, default 2.
//
//	QUANTPACK_BENCH_PRESET=vit-base-patch16-224 go test ./convert -run '^$' \
//	    -bench 'ExportedGraph' -benchtime 30x

var benchModel struct {
	once sync.Once
	dir  string
	err  error
}

// benchCheckpoint returns the benchmark preset's checkpoint, synthesized
// once into a fixed folder of the temporary directory and reused by later
// runs (synth output depends only on preset and seed, and appears
// atomically), so repeated benchmark runs neither redo it nor pile up copies.
func benchCheckpoint(b *testing.B) string {
	b.Helper()
	benchModel.once.Do(func() {
		preset := os.Getenv("QUANTPACK_BENCH_PRESET")
		if preset == "" {
			preset = "deit-tiny-patch16-224"
		}
		benchModel.dir = filepath.Join(os.TempDir(), "quantpack-bench-"+preset+"-seed1")
		if _, err := os.Stat(filepath.Join(benchModel.dir, "config.json")); err == nil {
			return
		}
		_, benchModel.err = Synth(context.Background(), preset, benchModel.dir, 1, 0)
	})
	if benchModel.err != nil {
		b.Fatal(benchModel.err)
	}
	return benchModel.dir
}

func benchThreads() int {
	if n, err := strconv.Atoi(os.Getenv("QUANTPACK_BENCH_THREADS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// BenchmarkExportedGraph reports the p50 latency of one Run per graph form
// and batch size (metric p50-ms; ns/op is the mean).
func BenchmarkExportedGraph(b *testing.B) {
	orttest.Require(b)
	src := benchCheckpoint(b)
	variants := []struct {
		name string
		opt  ExportOptions
	}{
		{"fp32", ExportOptions{Precision: ExportFP32}},
		{"fp32-plain", ExportOptions{Precision: ExportFP32, Plain: true}},
		{"fp16", ExportOptions{Precision: ExportFP16}},
		{"int8-dynamic", ExportOptions{Precision: ExportInt8, Int8Mode: Int8Dynamic}},
		{"int8-qdq", ExportOptions{Precision: ExportInt8, Int8Mode: Int8QDQ}},
		{"int4", ExportOptions{Precision: ExportInt4}},
		{"nf4", ExportOptions{Precision: ExportNF4}},
	}
	for _, v := range variants {
		out, m := exportTo(b, src, v.opt)
		s, err := ort.Open(filepath.Join(out, "model.onnx"), ort.Options{IntraOpThreads: benchThreads()})
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range []int64{1, 8} {
			b.Run(fmt.Sprintf("%s/batch=%d", v.name, batch), func(b *testing.B) {
				in := m.Inputs[0]
				shape := append([]int64{batch}, in.Shape[1:]...)
				n := shape[0] * shape[1] * shape[2] * shape[3]
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(i%251)/125 - 1
				}
				inputs := []verify.Tensor{{Name: in.Name, DType: verify.Float32, Shape: shape, F32: x}}
				for i := 0; i < 2; i++ { // warm-up: allocations, prepacking
					if _, err := s.Run(context.Background(), inputs); err != nil {
						b.Fatal(err)
					}
				}
				times := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					if _, err := s.Run(context.Background(), inputs); err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(t0))
				}
				b.StopTimer()
				sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
				b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(m.Sizes.TotalBytes)/(1<<20), "MiB")
			})
		}
		s.Close()
	}
}

// BenchmarkExport times export itself (fp32, from the synthesized
// checkpoint): graph building, streaming every weight to model.onnx.data,
// hashing sources and outputs.
func BenchmarkExport(b *testing.B) {
	src := benchCheckpoint(b)
	var size int64
	if ents, err := os.ReadDir(src); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				size += fi.Size()
			}
		}
	}
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "onnx")
		if _, err := Export(context.Background(), src, out, ExportOptions{Precision: ExportFP32}); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(out)
	}
}

// BenchmarkProfileExportedGraph runs each graph form of the benchmark
// preset at batch 8 under ONNX Runtime's profiler and reports the share of
// kernel time per operator type after ORT's own fusions (metrics
// "<Op>-%"): the evidence behind the fused-op choices in docs/export.md.
//
//	QUANTPACK_BENCH_PRESET=vit-base-patch16-224 go test ./convert -run '^$' \
//	    -bench ProfileExportedGraph -benchtime 4x
func BenchmarkProfileExportedGraph(b *testing.B) {
	orttest.Require(b)
	src := benchCheckpoint(b)
	for _, v := range []struct {
		name string
		opt  ExportOptions
	}{
		{"fp32", ExportOptions{Precision: FP32}},
		{"fp32-plain", ExportOptions{Precision: FP32, Plain: true}},
		{"fp16", ExportOptions{Precision: FP16}},
		{"int8-dynamic", ExportOptions{Precision: Int8}},
		{"int8-qdq", ExportOptions{Precision: Int8, Int8Mode: Int8QDQ}},
		{"int4", ExportOptions{Precision: Int4}},
		{"nf4", ExportOptions{Precision: NF4}},
	} {
		b.Run(v.name, func(b *testing.B) {
			out, m := exportTo(b, src, v.opt)
			prefix := filepath.Join(b.TempDir(), "prof")
			s, err := ort.Open(filepath.Join(out, "model.onnx"), ort.Options{IntraOpThreads: benchThreads(), ProfilePrefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			in := m.Inputs[0]
			shape := append([]int64{8}, in.Shape[1:]...)
			x := make([]float32, shape[0]*shape[1]*shape[2]*shape[3])
			for i := range x {
				x[i] = float32(i%251)/125 - 1
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Run(context.Background(), []verify.Tensor{{Name: in.Name, DType: verify.Float32, Shape: shape, F32: x}}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			file, err := s.EndProfiling()
			if err != nil {
				b.Fatal(err)
			}
			byOp, total := profileByOp(b, file)
			if total == 0 {
				return
			}
			for op, d := range byOp {
				b.ReportMetric(100*float64(d)/float64(total), op+"-%")
			}
			b.ReportMetric(float64(total)/1000/float64(b.N), "kernel-ms/op")
		})
	}
}

// profileByOp sums kernel time (µs) per operator type in an ORT profile.
func profileByOp(t testing.TB, file string) (map[string]int64, int64) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Cat  string         `json:"cat"`
		Name string         `json:"name"`
		Dur  int64          `json:"dur"`
		Args map[string]any `json:"args"`
	}
	if err := json.Unmarshal(raw, &events); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	var total int64
	for _, e := range events {
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") {
			continue
		}
		op, _ := e.Args["op_name"].(string)
		out[op] += e.Dur
		total += e.Dur
	}
	return out, total
}

// BenchmarkLatencyTable measures the p50 latency of every graph form of the
// benchmark preset at batch 1 and 8 with interleaved runs: each iteration
// is one round that runs every variant once, so load from other processes
// falls on all variants alike and the speedups stay comparable on a busy
// machine. It reports "<variant>/b<batch>-p50-ms" and "-speedup" (against
// fp32 in the same rounds) and logs the Markdown table of docs/perf.md
// "Export / ORT CPU":
//
//	QUANTPACK_BENCH_PRESET=vit-base-patch16-224 go test ./convert -run '^$' \
//	    -bench LatencyTable -benchtime 15x -timeout 60m -v
//
// QUANTPACK_BENCH_VARIANTS narrows the rows (see below).
func BenchmarkLatencyTable(b *testing.B) {
	orttest.Require(b)
	src := benchCheckpoint(b)
	type variant struct {
		name string
		opt  ExportOptions
		s    *ort.Session
		size int64
		in   IOSpec
	}
	vs := []*variant{
		{name: "fp32", opt: ExportOptions{Precision: FP32}},
		{name: "fp32-plain", opt: ExportOptions{Precision: FP32, Plain: true}},
		{name: "fp16", opt: ExportOptions{Precision: FP16}},
		{name: "int8-dynamic", opt: ExportOptions{Precision: Int8}},
		{name: "int8-qdq", opt: ExportOptions{Precision: Int8, Int8Mode: Int8QDQ}},
		{name: "int4", opt: ExportOptions{Precision: Int4}}, // the default: block 128, hqq, accuracy 4
		{name: "int4-acc1", opt: ExportOptions{Precision: Int4, Int4Accuracy: 1}},
		{name: "int4-b32-rtn", opt: ExportOptions{Precision: Int4, Convert: Options{BlockSize: 32, Method: quant.MethodRTN}}},
		{name: "nf4", opt: ExportOptions{Precision: NF4}},
	}
	// QUANTPACK_BENCH_VARIANTS=fp32,int4 keeps only the named rows (fp32,
	// every speedup's baseline, is always kept): a quiet-machine run of the
	// rows a decision needs.
	if only := os.Getenv("QUANTPACK_BENCH_VARIANTS"); only != "" {
		keep := strings.Split(only, ",")
		vs = slices.DeleteFunc(vs, func(v *variant) bool { return v.name != "fp32" && !slices.Contains(keep, v.name) })
	}
	for _, v := range vs {
		out, m := exportTo(b, src, v.opt)
		s, err := ort.Open(filepath.Join(out, "model.onnx"), ort.Options{IntraOpThreads: benchThreads()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		v.s, v.size, v.in = s, m.Sizes.TotalBytes, m.Inputs[0]
	}
	batches := []int64{1, 8}
	inputs := make([][]verify.Tensor, len(batches))
	for j, batch := range batches {
		shape := append([]int64{batch}, vs[0].in.Shape[1:]...)
		x := make([]float32, shape[0]*shape[1]*shape[2]*shape[3])
		for i := range x {
			x[i] = float32(i%251)/125 - 1
		}
		inputs[j] = []verify.Tensor{{Name: vs[0].in.Name, DType: verify.Float32, Shape: shape, F32: x}}
	}
	times := make([][][]time.Duration, len(batches))
	for j := range batches {
		times[j] = make([][]time.Duration, len(vs))
	}
	round := func(record bool) {
		for j := range batches {
			for i, v := range vs {
				t0 := time.Now()
				if _, err := v.s.Run(context.Background(), inputs[j]); err != nil {
					b.Fatalf("%s: %v", v.name, err)
				}
				if record {
					times[j][i] = append(times[j][i], time.Since(t0))
				}
			}
		}
	}
	round(false) // warm-up: allocations, prepacking
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		round(true)
	}
	b.StopTimer()
	p50 := make([][]float64, len(batches))
	for j, batch := range batches {
		p50[j] = make([]float64, len(vs))
		for i, v := range vs {
			p50[j][i] = verify.NewLatencyStats(times[j][i]).P50
			b.ReportMetric(p50[j][i], fmt.Sprintf("%s/b%d-p50-ms", v.name, batch))
			b.ReportMetric(p50[j][0]/p50[j][i], fmt.Sprintf("%s/b%d-speedup", v.name, batch))
		}
	}
	tab := "\n| graph | size MiB | p50 ms b1 | speedup b1 | p50 ms b8 | speedup b8 |\n|---|---|---|---|---|---|\n"
	for i, v := range vs {
		tab += fmt.Sprintf("| %s | %.1f | %.1f | %.2f× | %.1f | %.2f× |\n", v.name, float64(v.size)/(1<<20),
			p50[0][i], p50[0][0]/p50[0][i], p50[1][i], p50[1][0]/p50[1][i])
	}
	b.Logf("%d threads, %d interleaved rounds after 1 warm-up round, ORT %s%s", benchThreads(), b.N, ort.Version(), tab)
}
