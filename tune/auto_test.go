package tune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/fault"
)

func autoOpts(t *testing.T, out string, target Target, cands ...convert.Precision) AutoOptions {
	model, calib := trained(t)
	return AutoOptions{Src: model, Out: out, Export: true, Candidates: cands, Target: target, Images: calib,
		Samples: testSamples, Open: openBytes, OpenPath: openPath}
}

func ptr(v float64) *float64 { return &v }

// readExportManifest reads the written quantpack.json.
func readExportManifest(t *testing.T, dir string) *convert.ExportManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "quantpack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m convert.ExportManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Auto == nil || m.Auto.Confirmed == nil {
		t.Fatalf("%s: no auto record with a confirming run", dir)
	}
	return &m
}

// TestAutoReachesTarget: a cosine target that int4 alone misses on vit-28
// but a mix reaches. The written export, run independently, meets it; the
// graph holds both MatMulNBits and DynamicQuantizeMatMul; the manifest
// lists every layer with its scheme.
func TestAutoReachesTarget(t *testing.T) {
	requireORT(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "auto")
	const target = 0.9995
	res, err := Auto(ctx, autoOpts(t, out, Target{MinCosine: ptr(target)}, convert.Int8, convert.Int4, convert.FP16))
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Record
	if !rec.Reached || rec.Stop != "target reached" || rec.Confirmed.CosineMean < target {
		t.Fatalf("record %+v", rec)
	}
	if rec.Mix["int4"] == 0 || rec.Mix["int8"] == 0 {
		t.Errorf("mix %v: want int4 and int8 layers (int4 alone misses %g on vit-28)", rec.Mix, target)
	}
	m := readExportManifest(t, out)
	if m.Ops["com.microsoft.MatMulNBits"] != rec.Mix["int4"] || m.Ops["com.microsoft.DynamicQuantizeMatMul"] != rec.Mix["int8"] {
		t.Errorf("ops %v do not match the mix %v", m.Ops, rec.Mix)
	}
	if len(m.Auto.Layers) != 18 {
		t.Errorf("%d layers recorded, want 18", len(m.Auto.Layers))
	}
	for _, l := range m.Auto.Layers {
		want := map[convert.Precision]string{convert.Int4: convert.SchemeInt4, convert.Int8: convert.SchemeInt8, convert.FP16: convert.SchemeFP16}[l.Precision]
		if l.Scheme != want {
			t.Errorf("%s: precision %s scheme %s", l.Name, l.Precision, l.Scheme)
		}
	}
	// Independent check of the written file on the same inputs.
	model, calib := trained(t)
	in, err := LoadInputs(ctx, model, calib, testSamples)
	if err != nil {
		t.Fatal(err)
	}
	fp32 := filepath.Join(t.TempDir(), "fp32")
	if _, err := convert.Export(ctx, model, fp32, convert.ExportOptions{Precision: convert.ExportFP32}); err != nil {
		t.Fatal(err)
	}
	base, dim := logitsOf(t, filepath.Join(fp32, "model.onnx"), in)
	got, _ := logitsOf(t, filepath.Join(out, "model.onnx"), in)
	if ref := reference(base, got, dim, in.Labels); ref.cos < target {
		t.Errorf("written export: cosine %.6f < %g", ref.cos, target)
	}
}

// TestAutoUnreachable: a target no candidate mix meets (int4/int8 only,
// cosine 0.9999999) ends with ErrTargetUnreachable (exit 5) and still
// writes the closest state, which is every layer promoted.
func TestAutoUnreachable(t *testing.T) {
	requireORT(t)
	out := filepath.Join(t.TempDir(), "auto")
	res, err := Auto(context.Background(), autoOpts(t, out, Target{MinCosine: ptr(0.9999999)}, convert.Int4, convert.Int8))
	if !errors.Is(err, ErrTargetUnreachable) || fault.ClassOf(err) != fault.Gate {
		t.Fatalf("err = %v, want ErrTargetUnreachable (gate)", err)
	}
	if res == nil || res.Record.Reached || res.Record.Stop != "unreachable" {
		t.Fatalf("result %+v", res)
	}
	m := readExportManifest(t, out)
	if m.Auto.Reached || m.Auto.Mix["int8"] == 0 {
		t.Errorf("manifest auto %+v", m.Auto)
	}
	if m.Auto.Confirmed.CosineMean <= 0.999 {
		t.Errorf("closest state has cosine %g; the most promoted mix should be near int8's 0.9999", m.Auto.Confirmed.CosineMean)
	}
}

// TestAutoBudgetAndInterrupt: a budget that ends right after the first
// state, and a cancel in the middle of the search, both leave a valid
// artifact that says how far the search got.
func TestAutoBudgetAndInterrupt(t *testing.T) {
	requireORT(t)
	target := Target{MinCosine: ptr(0.9999999)}
	out := filepath.Join(t.TempDir(), "budget")
	opt := autoOpts(t, out, target, convert.Int4, convert.Int8)
	opt.Budget = time.Nanosecond
	res, err := Auto(context.Background(), opt)
	if !errors.Is(err, ErrTargetUnreachable) || res == nil || res.Record.Stop != "budget" || res.Record.Evaluations != 1 {
		t.Fatalf("budget: err %v, result %+v", err, res)
	}
	readExportManifest(t, out)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out = filepath.Join(t.TempDir(), "interrupt")
	opt = autoOpts(t, out, target, convert.Int4, convert.Int8)
	opt.Log = &cancelOn{word: "ranked", cancel: cancel}
	res, err = Auto(ctx, opt)
	if !errors.Is(err, context.Canceled) || res == nil || res.Record.Stop != "interrupted" {
		t.Fatalf("interrupt: err %v, result %+v", err, res)
	}
	readExportManifest(t, out)
}

// cancelOn cancels when a log line contains word.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	word   string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.word) {
		c.cancel()
	}
	return len(p), nil
}

func TestParseCandidates(t *testing.T) {
	got, err := ParseCandidates("fp16, int8,int4")
	if err != nil || len(got) != 3 || got[0] != convert.Int4 || got[2] != convert.FP16 {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"int4,nf4", "int3", "int8,int8", ""} {
		if _, err := ParseCandidates(bad); !errors.Is(err, ErrOption) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

// TestLadderDropsDominated: a candidate that takes no fewer bytes than a
// more precise one is never chosen.
func TestLadderDropsDominated(t *testing.T) {
	layers := []convert.Layer{{Name: "a"}, {Name: "b"}}
	lb := map[convert.Precision]map[string]int64{
		convert.Int4: {"a": 4608, "b": 8192},
		convert.Int8: {"a": 4352, "b": 8704},
		convert.FP16: {"a": 16384, "b": 32768},
	}
	got := ladderOf(layers, []convert.Precision{convert.Int4, convert.Int8, convert.FP16}, lb)
	if len(got[0]) != 2 || got[0][0] != convert.Int8 || len(got[1]) != 3 || got[1][0] != convert.Int4 {
		t.Errorf("ladders %v", got)
	}
}
