package tune

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/quantpack/quantpack/convert"
)

// TestVariantsPastProtobufLimit runs sensitivity's path on a checkpoint
// whose FP32 weights pass protobuf's 2 GiB, where inline variant graphs
// cannot be encoded: the FP32 graph and one layer-alone cut variant are
// built, opened and run on one synthetic input. Heavy (a synthesized
// vit-huge-patch14-224: 2.5 GB of weights, about 8 GB of memory), so it
// runs only when $QUANTPACK_LARGE_MODEL names such a checkpoint:
//
//	quantpack synth --preset vit-huge-patch14-224 -o /tmp/vit-huge
//	QUANTPACK_LARGE_MODEL=/tmp/vit-huge go test ./tune -run PastProtobufLimit -v
func TestVariantsPastProtobufLimit(t *testing.T) {
	src := os.Getenv("QUANTPACK_LARGE_MODEL")
	if src == "" {
		t.Skip("set QUANTPACK_LARGE_MODEL to a checkpoint over 2 GiB (see the comment)")
	}
	requireORT(t)
	ctx := context.Background()
	v, err := convert.OpenVariants(ctx, src, convert.VariantOptions{Precisions: []convert.Precision{convert.Int8}, TmpDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var fp32 int64
	for _, l := range v.Layers() {
		fp32 += l.Bytes[convert.FP32]
	}
	if fp32 < 2<<30 {
		t.Fatalf("%s: %d bytes of quantizable FP32 weights, want a model past 2 GiB", src, fp32)
	}
	in, err := LoadInputs(ctx, v.Dir(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	model, err := v.Build(nil, convert.FP32)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d layers, %d B of FP32 layer weights; FP32 graph %d B, shared data %d B", len(v.Layers()), fp32, len(model), v.DataBytes())
	e, err := newEvaluator(ctx, in, openBytes, SessionOptions{DataDir: v.DataDir(), Threads: 2}, model)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := newReuse(ctx, v, e)
	if err != nil {
		t.Fatal(err)
	}
	last := v.Layers()[len(v.Layers())-1].Name
	a := rs.byLayer[last]
	if a == nil {
		t.Fatalf("no stored activation before %s", last)
	}
	cut, err := v.BuildCut(map[string]convert.Precision{last: convert.Int8}, convert.FP32, a.name, a.dims)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.evalCut(ctx, cut, a)
	if err != nil {
		t.Fatal(err)
	}
	// One int8 layer moves the output a little, not to nothing or NaN.
	if m.NonFinite != 0 || !(m.CosineMean > 0.9 && m.CosineMean < 1) || math.IsNaN(m.CosineMean) {
		t.Fatalf("%s at int8 alone: %+v", last, m)
	}
	t.Logf("%s at int8 alone: cosine %.6f (cut graph %d B)", last, m.CosineMean, len(cut))
}
