package convert

import (
	"context"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/formats/onnx"
	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// TestInt4BlockFor: the per-tensor block rule on the widths of real models,
// with the expected block worked out by hand from the layout's bytes per
// row (codes kb·block/2, float32 scales 4·kb, asymmetric zero points
// ⌈kb/2⌉, kb = ⌈K/block⌉).
func TestInt4BlockFor(t *testing.T) {
	cases := []struct {
		k     int64
		asym  bool
		block int64
		why   string
	}{
		{768, true, 128, "ViT-Base hidden: a multiple of 128 keeps the default"},
		{3072, true, 128, "ViT-Base MLP"},
		{384, false, 128, "DeiT-Small hidden, symmetric"},
		{192, true, 64, "DeiT-Tiny hidden: 96+12+2 bytes against 128+8+1 padded"},
		{192, false, 64, "DeiT-Tiny, symmetric: 96+12 against 128+8"},
		{144, true, 64, "MobileViT-S: 3 blocks of 64 (96+12+2) against 2 padded of 128 (128+8+1)"},
		{240, true, 128, "every block pads 240 to 256: the fewest scales win"},
		{96, true, 128, "one padded block of 128 (64+4+1) against two of 64 (64+8+1)"},
		{320, true, 64, "5 blocks of 64 (160+20+3) against 3 of 128 (192+12+2)"},
		{480, true, 128, "4 padded blocks of 128 (256+16+2) against 8 of 64 (256+32+4)"},
		{832, true, 64, "13 blocks of 64 (416+52+7) against 7 of 128 (448+28+4): the widest K = 64·odd that keeps 64"},
		{960, true, 128, "8 blocks of 128 (512+32+4) against 15 of 64 (480+60+8): the tie goes to the larger block"},
		{1344, true, 128, "11 blocks of 128 (704+44+6) against 21 of 64 (672+84+11)"},
		{24, true, 64, "mobilevit-dev: one block of 64 (32+4+1) against 128 (64+4+1)"},
		{40, true, 64, "one block of 64 (32+4+1)"},
		{64, true, 64, "the reference fixtures' MLP"},
		{32, true, 64, "the reference fixtures' hidden: one block of 64 (32+4+1), no smaller than minAutoInt4Block"},
		{16, true, 64, "never below minAutoInt4Block, even where a smaller block would fit"},
	}
	// Study's cache keys carry the rule's name: it must name the floor.
	if want := fmt.Sprintf("blocks %d..%d", minAutoInt4Block, DefaultInt4Block); !strings.Contains(Int4BlockRule, want) {
		t.Errorf("Int4BlockRule %q does not say %q", Int4BlockRule, want)
	}
	for _, c := range cases {
		if got := int4BlockFor(c.k, c.asym); got != c.block {
			t.Errorf("K=%d asym=%v: block %d, want %d (%s)", c.k, c.asym, got, c.block, c.why)
		}
	}
}

// TestInt4BlockForFewestBytes: for every K up to 4096 the rule's block is a
// power of two from minAutoInt4Block to DefaultInt4Block, keeps the default
// on multiples of it, and stores no more bytes per row than any other
// allowed block, by a formula written here independently of the layouts
// table.
func TestInt4BlockForFewestBytes(t *testing.T) {
	rowBytes := func(k, bs int64, asym bool) int64 {
		kb := (k + bs - 1) / bs
		n := kb*bs/2 + 4*kb
		if asym {
			n += (kb + 1) / 2
		}
		return n
	}
	for _, asym := range []bool{false, true} {
		for k := int64(1); k <= 4096; k++ {
			got := int4BlockFor(k, asym)
			if got < minAutoInt4Block || got > DefaultInt4Block || got&(got-1) != 0 {
				t.Fatalf("K=%d: block %d outside the allowed powers of two", k, got)
			}
			if k%DefaultInt4Block == 0 && got != DefaultInt4Block {
				t.Fatalf("K=%d: block %d, a multiple of %d must keep it", k, got, DefaultInt4Block)
			}
			for bs := int64(minAutoInt4Block); bs <= DefaultInt4Block; bs *= 2 {
				if b, g := rowBytes(k, bs, asym), rowBytes(k, got, asym); b < g || (b == g && bs > got) {
					t.Fatalf("K=%d asym=%v: block %d stores %d bytes a row, block %d %d", k, asym, got, g, bs, b)
				}
			}
		}
	}
}

// TestInt4BlockExplicit: a --block-size is obeyed exactly, whatever K; the
// rule applies only when none was given, also to int4 tensors of a mix
// under another precision.
func TestInt4BlockExplicit(t *testing.T) {
	cases := []struct {
		opt   Options
		k     int64
		block int64
	}{
		{Options{Precision: Int4, BlockSize: 128}, 192, 128},
		{Options{Precision: Int4, BlockSize: 32}, 768, 32},
		{Options{Precision: Int4, BlockSize: 256}, 192, 256},
		{Options{Precision: Int4}, 192, 64},
		{Options{Precision: Int4}, 768, 128},
		{Options{Precision: Int4, Asymmetric: true}, 144, 64},
		{Options{Precision: Int8}, 192, 64},
		{Options{Precision: NF4, BlockSize: 4096}, 192, 64},
	}
	for _, c := range cases {
		o := c.opt.withDefaults()
		if got := o.int4Block(c.k); got != c.block {
			t.Errorf("%+v, K=%d: block %d, want %d", c.opt, c.k, got, c.block)
		}
		// withDefaults is idempotent: defaulted twice is still the rule.
		if o2 := o.withDefaults(); o2.int4Block(c.k) != c.block {
			t.Errorf("%+v twice defaulted, K=%d: block %d, want %d", c.opt, c.k, o2.int4Block(c.k), c.block)
		}
	}
}

// TestPerTensorBlockDeiTTiny: DeiT-Tiny (hidden 192, MLP 768) converted to
// int4 with the defaults gets block 64 where K = 192 and 128 where K = 768,
// records each in quantpack.json, is smaller than the padded block 128
// (artifact and export), exports each MatMulNBits with its own tensor's
// block_size, dequantizes (--dequantize-input) to the unpadded [N, K], and
// runs in ONNX Runtime matching the float64 forward pass on the dequantized
// weights.
func TestPerTensorBlockDeiTTiny(t *testing.T) {
	orttest.Require(t)
	if testing.Short() {
		t.Skip("converts, exports and runs DeiT-Tiny at 224×224")
	}
	ctx := context.Background()
	src := synthPreset(t, "deit-tiny-patch16-224")
	art, art128 := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "a128")
	m, err := Convert(ctx, src, art, Options{Precision: Int4})
	if err != nil {
		t.Fatal(err)
	}
	m128, err := Convert(ctx, src, art128, Options{Precision: Int4, BlockSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Scheme.BlockPerTensor || m128.Scheme.BlockPerTensor || m.Scheme.BlockSize != DefaultInt4Block {
		t.Errorf("scheme: default %+v, explicit 128 %+v", m.Scheme, m128.Scheme)
	}
	blocks := map[string]int{}
	for i, r := range m.Tensors {
		if r.Scheme != SchemeInt4 {
			continue
		}
		want := 64
		if r.Shape[1]%128 == 0 {
			want = 128
		}
		if r.BlockSize != want || m128.Tensors[i].BlockSize != 128 {
			t.Errorf("%s %v: block %d (want %d), explicit 128: %d", r.Name, r.Shape, r.BlockSize, want, m128.Tensors[i].BlockSize)
		}
		blocks[r.Name] = r.BlockSize
	}
	if len(blocks) != 72 {
		t.Fatalf("%d int4 tensors, want DeiT-Tiny's 72 Linears", len(blocks))
	}
	// 60 of 72 Linears read K = 192: 256 padded codes a row become 192.
	if got, was := m.Totals.BytesOut, m128.Totals.BytesOut; got >= was || float64(got) > 0.9*float64(was) {
		t.Errorf("artifact %d bytes, explicit block 128 %d: want ≥ 10%% smaller", got, was)
	}

	in, err := Inspect(art)
	if err != nil {
		t.Fatal(err)
	}
	if q := in.Quantization; len(q) != 1 || !maps.Equal(q[0].Blocks, map[int]int{64: 60, 128: 12}) {
		t.Errorf("inspect: %+v, want 60 weights of block 64 and 12 of 128", q)
	}

	out, em := exportTo(t, art, ExportOptions{Precision: ExportInt4, Int4Accuracy: 1})
	_, em128 := exportTo(t, art128, ExportOptions{Precision: ExportInt4, Int4Accuracy: 1})
	if em.Sizes.TotalBytes >= em128.Sizes.TotalBytes {
		t.Errorf("export %d bytes, explicit block 128 %d: want smaller", em.Sizes.TotalBytes, em128.Sizes.TotalBytes)
	}
	g, err := onnx.ReadFile(filepath.Join(out, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	nodes := 0
	for _, n := range g.Graph.Nodes {
		if n.OpType != "MatMulNBits" {
			continue
		}
		nodes++
		var bs int64
		for _, a := range n.Attrs {
			if a.Name == "block_size" {
				bs = a.I
			}
		}
		want, ok := blocks[n.Inputs[1]]
		if !ok || bs != int64(want) {
			t.Errorf("MatMulNBits %s on %s: block_size %d, the tensor's is %d (found %v)", n.Name, n.Inputs[1], bs, want, ok)
		}
	}
	if nodes != len(blocks) {
		t.Errorf("%d MatMulNBits nodes, want %d", nodes, len(blocks))
	}

	ref := loadRefNet(t, art)
	deq := filepath.Join(t.TempDir(), "deq")
	if _, err := Convert(ctx, art, deq, Options{Precision: FP16, DequantizeInput: true, NoStats: true}); err != nil {
		t.Fatal(err)
	}
	back := loadRefNet(t, deq)
	for name := range blocks {
		want, got := ref.w[name], back.w[name]
		if len(got) != len(want) || len(back.dims[name]) != 2 || back.dims[name][1] != ref.dims[name][1] {
			t.Fatalf("%s: dequantized shape %v, want %v", name, back.dims[name], ref.dims[name])
		}
		for i := range want {
			// fp16 keeps 11 significant bits: 2^-11 relative, plus
			// fp16's subnormal spacing near zero.
			if math.Abs(got[i]-want[i]) > math.Abs(want[i])/2048+6e-8 {
				t.Fatalf("%s[%d]: dequantized %g, the artifact's codes say %g", name, i, got[i], want[i])
			}
		}
	}

	shape := []int64{1, 3, 224, 224}
	x := make([]float32, 3*224*224)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * 1.5
	}
	matchesRefNet(t, "deit-tiny", out, art, x, shape)
}
