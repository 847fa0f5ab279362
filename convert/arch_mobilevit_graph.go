package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/onnx"
)

// mobilevitGraph builds MobileViTModel and MobileViTForImageClassification as
// transformers 4.47 computes them (modeling_mobilevit.py), in eval mode:
//
//	x = conv_stem(pixels)                          3×3 stride 2
//	layer 1, 2: MobileNet stages of inverted residuals
//	layer 3, 4, 5: MobileViT blocks
//	h = conv_1x1_exp(x); pooled = mean over H, W
//	logits = classifier(pooled)
//
// MobileViTModel outputs last_hidden_state = h and pooler_output = pooled.
// Every MobileViTConvLayer is Conv (BatchNorm folded in, eps 1e-5) followed
// by the config's activation where the modeling code applies one.
func mobilevitGraph(b *builder) error {
	p, err := readMobilevitParams(b.cfg)
	if err != nil {
		return err
	}
	pre := b.arch.Prefix
	h, w := b.opt.Height, b.opt.Width
	// Spatial size after the stem and each stage: every stride-2 step is a
	// 3×3 conv with padding 1, out = ⌊(n−1)/2⌋+1.
	down := func(n int) int { return (n-1)/2 + 1 }
	h, w = down(h), down(w)
	x := b.convLayer(b.pixels(p.Channels), pre+"conv_stem", p, p.Neck[0], 3, 2, 1, true)
	vitStage := 0
	for s, st := range mobilevitStages {
		in, out := p.Neck[s], p.Neck[s+1]
		base := fmt.Sprintf("%sencoder.layer.%d", pre, s)
		b.in(fmt.Sprintf("layer%d", s+1), func() {
			if !st.vit {
				for i := 0; i < st.depth; i++ {
					stride := 1
					if i == 0 {
						stride = st.stride
					}
					x = b.invertedResidual(x, fmt.Sprintf("%s.layer.%d", base, i), p, in, out, stride)
					in = out
				}
			} else {
				x = b.mobilevitBlock(x, base, p, in, out, p.Hidden[vitStage], st.depth, down(h), down(w))
				vitStage++
			}
		})
		if st.stride == 2 {
			h, w = down(h), down(w)
		}
	}
	x = b.convLayer(x, pre+"conv_1x1_exp", p, p.Neck[6], 1, 1, 1, true)
	C := int64(p.Neck[6])
	b.in("head", func() {
		pooled := b.node("Flatten", []string{b.node("GlobalAveragePool", []string{x})}, onnx.AttrInt("axis", 1))
		if b.arch.Name == "MobileViTModel" {
			b.output("last_hidden_state", x, C, int64(h), int64(w))
			b.output("pooler_output", pooled, C)
			return
		}
		b.output("logits", b.linear(pooled, "classifier"), int64(p.Labels))
	})
	return b.err
}

// convLayer is MobileViTConvLayer: Conv2d (padding (k−1)/2, no bias), then
// BatchNorm2d (folded) and the activation when asked.
func (b *builder) convLayer(x, prefix string, p mobilevitParams, out, k, stride, groups int, act bool) string {
	bn := b.readBatchNorm(prefix+".normalization", int64(out), bnEps)
	y := b.conv2d(x, prefix+".convolution.weight", convSpec{Kernel: k, Stride: stride, Groups: groups}, &bn)
	if act {
		y = b.activation(y, p.Act)
	}
	return y
}

// invertedResidual is MobileViTInvertedResidual: expand 1×1 → depthwise 3×3
// (with the stride) → reduce 1×1 without activation, plus the input when
// stride is 1 and the channel counts match.
func (b *builder) invertedResidual(x, prefix string, p mobilevitParams, in, out, stride int) string {
	e := p.expanded(in)
	var y string
	b.in(prefix, func() {
		y = b.convLayer(x, prefix+".expand_1x1", p, e, 1, 1, 1, true)
		y = b.convLayer(y, prefix+".conv_3x3", p, e, 3, stride, e, true)
		y = b.convLayer(y, prefix+".reduce_1x1", p, out, 1, 1, 1, false)
		if stride == 1 && in == out {
			y = b.add(x, y)
		}
	})
	return y
}

// mobilevitBlock is MobileViTLayer: downsampling inverted residual, conv k×k,
// conv 1×1 to the transformer width (no norm, no activation), unfold into
// patches, transformer layers, layernorm, fold, conv_projection 1×1 and the
// fusion k×k conv over concat(residual, features). h, w is the spatial size
// after the downsampling layer.
func (b *builder) mobilevitBlock(x, base string, p mobilevitParams, in, out, hidden, depth, h, w int) string {
	if h%p.Patch != 0 || w%p.Patch != 0 {
		// transformers would interpolate to a multiple of the patch size
		// and back; no released checkpoint's input size needs it.
		b.errf(fmt.Errorf("%w: %s: feature map %dx%d is not a multiple of patch_size %d (choose an image size divisible by %d)",
			ErrImageSize, base, h, w, p.Patch, 32*p.Patch))
		return x
	}
	x = b.invertedResidual(x, base+".downsampling_layer", p, in, out, 2)
	residual := x
	y := b.convLayer(x, base+".conv_kxk", p, out, p.Kernel, 1, 1, true)
	y = b.conv2d(y, base+".conv_1x1.convolution.weight", convSpec{Kernel: 1, Stride: 1, Groups: 1}, nil)
	P := int64(p.Patch)
	nh, nw := int64(h)/P, int64(w)/P
	N, Hd := nh*nw, int64(hidden)
	// unfolding: [B, C, nh·P, nw·P] → [B·P·P, nh·nw, C]. The modeling code's
	// reshape/transpose chain orders the rows as (b, ph, pw) and the patches
	// as (i, j), which is this one permutation of the 6-D view.
	t := b.reshape(y, 0, Hd, nh, P, nw, P) // [B, C, nh, ph, nw, pw]
	t = b.transpose(t, 0, 3, 5, 2, 4, 1)   // [B, ph, pw, nh, nw, C]
	t = b.reshape(t, -1, N, Hd)            // [B·P·P, N, C]
	vp := vitParams{Hidden: hidden, Heads: p.Heads}
	for i := 0; i < depth; i++ {
		l := fmt.Sprintf("%s.transformer.layer.%d", base, i)
		b.in(fmt.Sprintf("transformer%d", i), func() {
			a := b.selfAttention(b.layerNorm(t, l+".layernorm_before", p.Eps), l+".attention", int(N), vp, "")
			t = b.add(a, t)
			m := b.mlp(b.layerNorm(t, l+".layernorm_after", p.Eps), l+".intermediate.dense", l+".output.dense", p.Act)
			t = b.add(m, t)
		})
	}
	t = b.layerNorm(t, base+".layernorm", p.Eps)
	// folding, the inverse permutation.
	t = b.reshape(t, -1, P, P, nh, nw, Hd) // [B, ph, pw, nh, nw, C]
	t = b.transpose(t, 0, 5, 3, 1, 4, 2)   // [B, C, nh, ph, nw, pw]
	t = b.reshape(t, -1, Hd, int64(h), int64(w))
	y = b.convLayer(t, base+".conv_projection", p, out, 1, 1, 1, true)
	return b.convLayer(b.concat(1, residual, y), base+".fusion", p, out, p.Kernel, 1, 1, true)
}
