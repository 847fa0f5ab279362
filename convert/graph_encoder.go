package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/onnx"
)

// Pieces shared by the ViT-style families (ViT, DeiT, DINOv2, BEiT; MobileViT
// uses the attention and MLP): patch embedding, token assembly, self-attention,
// the MLP and ViT's whole layer stack. The config and tensor side is encoder.go.

// vitEncoder builds ViTModel's body (modeling_vit.py, and DeiT's, which is
// the same with one more token) under pre:
//
//	x = cat(tokens, patch_embed(pixels)) + pos
//	per layer: x = x + attn(LN_before(x)); x = x + out(act(inter(LN_after(x))))
//	h = layernorm(x)
//
// tokens are the token parameters' names under pre+"embeddings." (cls_token,
// DeiT's distillation_token). It returns h [batch, seq, hidden] and seq.
func (b *builder) vitEncoder(pre string, p vitParams, tokens ...string) (h string, seq int) {
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = pre + "embeddings." + t
	}
	gh, gw := b.grid(p)
	seq = len(tokens) + gh*gw
	var x string
	b.in("embeddings", func() {
		x = b.patchEmbed(pre+"embeddings.patch_embeddings.projection", p)
		x = b.prependTokens(x, p.Hidden, names...)
		x = b.addPosEmbed(x, pre+"embeddings.position_embeddings", len(tokens), p)
	})
	for i := 0; i < p.Layers; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d", pre, i)
		b.in(fmt.Sprintf("layer%d", i), func() {
			a := b.selfAttention(b.layerNorm(x, l+".layernorm_before", p.Eps), l+".attention", seq, p, "")
			x = b.add(a, x)
			y := b.mlp(b.layerNorm(x, l+".layernorm_after", p.Eps), l+".intermediate.dense", l+".output.dense", p.Act)
			x = b.add(y, x)
		})
	}
	return b.layerNorm(x, pre+"layernorm", p.Eps), seq
}

// grid returns the export's patch grid, checking the image size divides.
func (b *builder) grid(p vitParams) (gh, gw int) {
	if b.opt.Height%p.Patch != 0 || b.opt.Width%p.Patch != 0 {
		b.errf(fmt.Errorf("%w: image size %dx%d is not a multiple of patch_size %d", ErrImageSize, b.opt.Height, b.opt.Width, p.Patch))
		return 1, 1
	}
	return b.opt.Height / p.Patch, b.opt.Width / p.Patch
}

// patchEmbed is the Conv2d(kernel = stride = patch) projection of
// pixel_values flattened to [batch, gh·gw, hidden] (flatten(2).transpose(1, 2)).
func (b *builder) patchEmbed(prefix string, p vitParams) string {
	gh, gw := b.grid(p)
	x := b.pixels(p.Channels)
	var y string
	b.in(prefix, func() {
		w := b.param(prefix + ".weight")
		bias := b.param(prefix + ".bias")
		y = b.node("Conv", []string{x, w, bias},
			onnx.AttrInts("kernel_shape", int64(p.Patch), int64(p.Patch)),
			onnx.AttrInts("strides", int64(p.Patch), int64(p.Patch)))
		y = b.transpose(b.reshape(y, 0, int64(p.Hidden), int64(gh*gw)), 0, 2, 1)
	})
	return y
}

// prependTokens concatenates the [1, 1, hidden] token parameters (CLS, and
// DeiT's distillation token), broadcast over the batch, before the patches.
func (b *builder) prependTokens(patches string, hidden int, names ...string) string {
	xs := make([]string, 0, len(names)+1)
	for _, n := range names {
		xs = append(xs, b.expandBatch(b.param(n), patches, 1, int64(hidden)))
	}
	return b.concat(1, append(xs, patches)...)
}

// addPosEmbed adds the position embeddings of name, resized to the export
// grid when it differs from the checkpoint's (see resizePosEmbed).
func (b *builder) addPosEmbed(x, name string, tokens int, p vitParams) string {
	gh, gw := b.grid(p)
	shape, _, err := b.w.info(name)
	if err != nil {
		b.errf(err)
		return x
	}
	if len(shape) != 3 || shape[0] != 1 || shape[2] != int64(p.Hidden) {
		b.errf(tensorErr(b.w.path, name, ErrTensorShape, "has shape %v, want [1, tokens, %d]", shape, p.Hidden))
		return x
	}
	if n := int(shape[1]) - tokens; n == gh*gw && gh == gw {
		return b.add(x, b.param(name))
	}
	pos := b.paramData(name)
	if b.err != nil {
		return x
	}
	res, err := resizePosEmbed(pos, tokens, p.Hidden, gh, gw)
	if err != nil {
		b.errf(fmt.Errorf("%s: %q: %w", b.w.path, name, err))
		return x
	}
	c := b.constF(name+".resized", []int64{1, int64(tokens + gh*gw), int64(p.Hidden)}, res)
	return b.add(x, c)
}

// selfAttention is ViTAttention / Dinov2Attention / BeitAttention: q, k, v
// projections (prefix.attention.{query,key,value}), attention with an
// optional additive bias, and the output dense layer (prefix.output.dense).
func (b *builder) selfAttention(x, prefix string, seq int, p vitParams, bias string) string {
	var y string
	b.in("attention", func() {
		q := b.linear(x, prefix+".attention.query")
		k := b.linear(x, prefix+".attention.key")
		v := b.linear(x, prefix+".attention.value")
		ctx := b.attention(q, k, v, bias, seq, p.Heads, p.Hidden)
		y = b.linear(ctx, prefix+".output.dense")
	})
	return y
}

// mlp is dense → activation → dense.
func (b *builder) mlp(x, in, out, act string) string {
	return b.linear(b.activation(b.linear(x, in), act), out)
}

// swiGLU is Dinov2SwiGLUFFN: weights_in → chunk(2) → silu(x1)·x2 → weights_out.
func (b *builder) swiGLU(x, prefix string, hiddenFeatures int) string {
	h := b.linear(x, prefix+".weights_in")
	n := int64(hiddenFeatures)
	x1 := b.slice(h, -1, 0, n)
	x2 := b.slice(h, -1, n, 2*n)
	return b.linear(b.mul(b.activation(x1, "silu"), x2), prefix+".weights_out")
}

// scaleBy multiplies by a per-channel parameter (layer scale).
func (b *builder) scaleBy(x, name string) string { return b.mul(x, b.param(name)) }
