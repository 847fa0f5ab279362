package convert

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quantpack/quantpack/verify"
	"github.com/quantpack/quantpack/verify/ort"
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
	needORT(b)
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

// TestProfileExportedGraph (QUANTPACK_PROFILE=1) runs each graph form of the
// benchmark preset under ONNX Runtime's profiler and logs the time per
// operator type after ORT's own fusions: the evidence behind the fused-op
// choices in docs/export.md.
func TestProfileExportedGraph(t *testing.T) {
	if os.Getenv("QUANTPACK_PROFILE") != "1" {
		t.Skip("set QUANTPACK_PROFILE=1 (and QUANTPACK_BENCH_PRESET) to profile the exported graphs")
	}
	needORT(t)
	src := benchCheckpointT(t)
	for _, v := range []struct {
		name string
		opt  ExportOptions
	}{
		{"fp32", ExportOptions{Precision: ExportFP32}},
		{"fp32-plain", ExportOptions{Precision: ExportFP32, Plain: true}},
		{"fp16", ExportOptions{Precision: ExportFP16}},
		{"int8-dynamic", ExportOptions{Precision: ExportInt8}},
		{"int8-qdq", ExportOptions{Precision: ExportInt8, Int8Mode: Int8QDQ}},
		{"int4", ExportOptions{Precision: ExportInt4}},
		{"nf4", ExportOptions{Precision: ExportNF4}},
	} {
		out, m := exportTo(t, src, v.opt)
		prefix := filepath.Join(t.TempDir(), "prof")
		s, err := ort.Open(filepath.Join(out, "model.onnx"), ort.Options{IntraOpThreads: benchThreads(), ProfilePrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		in := m.Inputs[0]
		shape := append([]int64{8}, in.Shape[1:]...)
		x := make([]float32, shape[0]*shape[1]*shape[2]*shape[3])
		for i := range x {
			x[i] = float32(i%251)/125 - 1
		}
		for i := 0; i < 4; i++ {
			if _, err := s.Run(context.Background(), []verify.Tensor{{Name: in.Name, DType: verify.Float32, Shape: shape, F32: x}}); err != nil {
				t.Fatal(err)
			}
		}
		file, err := s.EndProfiling()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		byOp, total := profileByOp(t, file)
		var ops []string
		for k := range byOp {
			ops = append(ops, k)
		}
		sort.Slice(ops, func(i, j int) bool { return byOp[ops[i]] > byOp[ops[j]] })
		line := fmt.Sprintf("%s batch 8, 4 runs, %.0f ms in kernels:", v.name, float64(total)/1000)
		for _, k := range ops {
			line += fmt.Sprintf(" %s %.1f%%", k, 100*float64(byOp[k])/float64(total))
		}
		t.Log(line)
	}
}

func benchCheckpointT(t *testing.T) string {
	t.Helper()
	var dir string
	testing.Benchmark(func(b *testing.B) { dir = benchCheckpoint(b) })
	if dir == "" {
		t.Fatal(benchModel.err)
	}
	return dir
}

// profileByOp sums kernel time (µs) per operator type in an ORT profile.
func profileByOp(t *testing.T, file string) (map[string]int64, int64) {
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

// TestLatencyTable (QUANTPACK_PERF=1) measures the p50 latency of every
// graph form of the benchmark preset at batch 1 and 8 with interleaved
// runs: each round runs every variant once, so load from other processes
// falls on all variants alike and the speedups stay comparable on a busy
// machine. It logs a Markdown table (docs/perf.md "Export / ORT CPU").
//
//	QUANTPACK_PERF=1 QUANTPACK_BENCH_PRESET=vit-base-patch16-224 \
//	    go test ./convert -run TestLatencyTable -v -timeout 60m
func TestLatencyTable(t *testing.T) {
	if os.Getenv("QUANTPACK_PERF") != "1" {
		t.Skip("set QUANTPACK_PERF=1 (and QUANTPACK_BENCH_PRESET) to measure")
	}
	needORT(t)
	src := benchCheckpointT(t)
	rounds := 15
	if n, err := strconv.Atoi(os.Getenv("QUANTPACK_PERF_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	type variant struct {
		name string
		opt  ExportOptions
		s    *ort.Session
		size int64
		in   IOSpec
	}
	vs := []*variant{
		{name: "fp32", opt: ExportOptions{Precision: ExportFP32}},
		{name: "fp32 plain", opt: ExportOptions{Precision: ExportFP32, Plain: true}},
		{name: "fp16", opt: ExportOptions{Precision: ExportFP16}},
		{name: "int8 dynamic", opt: ExportOptions{Precision: ExportInt8}},
		{name: "int8 qdq", opt: ExportOptions{Precision: ExportInt8, Int8Mode: Int8QDQ}},
		{name: "int4", opt: ExportOptions{Precision: ExportInt4}},
		{name: "int4 acc1", opt: ExportOptions{Precision: ExportInt4, Int4Accuracy: 1}},
		{name: "int4 block 128", opt: ExportOptions{Precision: ExportInt4, Convert: Options{BlockSize: 128}}},
		{name: "nf4", opt: ExportOptions{Precision: ExportNF4}},
	}
	for _, v := range vs {
		out, m := exportTo(t, src, v.opt)
		s, err := ort.Open(filepath.Join(out, "model.onnx"), ort.Options{IntraOpThreads: benchThreads()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		v.s, v.size, v.in = s, m.Sizes.TotalBytes, m.Inputs[0]
	}
	p50 := map[string]map[int64]float64{}
	for _, batch := range []int64{1, 8} {
		shape := append([]int64{batch}, vs[0].in.Shape[1:]...)
		x := make([]float32, shape[0]*shape[1]*shape[2]*shape[3])
		for i := range x {
			x[i] = float32(i%251)/125 - 1
		}
		in := []verify.Tensor{{Name: vs[0].in.Name, DType: verify.Float32, Shape: shape, F32: x}}
		times := make([][]time.Duration, len(vs))
		for r := -2; r < rounds; r++ { // two warm-up rounds
			for i, v := range vs {
				t0 := time.Now()
				if _, err := v.s.Run(context.Background(), in); err != nil {
					t.Fatalf("%s: %v", v.name, err)
				}
				if r >= 0 {
					times[i] = append(times[i], time.Since(t0))
				}
			}
		}
		for i, v := range vs {
			st := verify.NewLatencyStats(times[i])
			if p50[v.name] == nil {
				p50[v.name] = map[int64]float64{}
			}
			p50[v.name][batch] = st.P50
		}
	}
	tab := "\n| graph | size MiB | p50 ms b1 | speedup b1 | p50 ms b8 | speedup b8 |\n|---|---|---|---|---|---|\n"
	for _, v := range vs {
		tab += fmt.Sprintf("| %s | %.1f | %.1f | %.2f× | %.1f | %.2f× |\n", v.name, float64(v.size)/(1<<20),
			p50[v.name][1], p50["fp32"][1]/p50[v.name][1], p50[v.name][8], p50["fp32"][8]/p50[v.name][8])
	}
	t.Logf("%d threads, %d interleaved rounds after 2 warm-up rounds, ORT %s%s", benchThreads(), rounds, ort.Version(), tab)
}
