package convert

import (
	"fmt"
	"slices"
)

// beitGraph builds BeitForImageClassification as transformers 4.47 computes
// it (modeling_beit.py):
//
//	x = cat(CLS, patch_embed(pixels)) [+ pos when use_absolute_position_embeddings]
//	per layer: x = x + λ1·attn(LN_before(x), bias); x = x + λ2·out(act(inter(LN_after(x))))
//	pooled = pooler.layernorm(mean(x[:,1:]))   (use_mean_pooling)
//	       = layernorm(x)[:,0]                  (otherwise)
//	logits = classifier(pooled)
//
// bias is the relative position bias, per layer or shared
// (use_shared_relative_position_bias), both summed when both are on. It is
// a constant: the table rows gathered by the relative position index, which
// export computes from the window (beitRelativeIndex) rather than trusting a
// stored relative_position_index buffer. At another (square) input size the
// table is resized bilinearly first and absolute position embeddings, when
// present, bicubically, as transformers does with interpolate_pos_encoding.
func beitGraph(b *builder) error {
	p, err := readBeitParams(b.cfg)
	if err != nil {
		return err
	}
	pre := b.arch.Prefix
	gh, gw := b.grid(p.vitParams)
	if gh != gw && (p.RelPos || p.SharedRelPos) {
		return fmt.Errorf("%w: BEiT with relative position bias at a non-square size %dx%d", ErrExportUnsupported, b.opt.Height, b.opt.Width)
	}
	seq := 1 + gh*gw
	var x string
	b.in("embeddings", func() {
		x = b.patchEmbed(pre+"embeddings.patch_embeddings.projection", p.vitParams)
		x = b.prependTokens(x, p.Hidden, pre+"embeddings.cls_token")
		if p.AbsPos {
			x = b.addPosEmbed(x, pre+"embeddings.position_embeddings", 1, p.vitParams)
		}
	})
	var shared []float32
	if p.SharedRelPos {
		shared = b.beitBias(pre+"encoder.relative_position_bias.relative_position_bias_table", p.grid(), gh, p.Heads)
	}
	for i := 0; i < p.Layers; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d", pre, i)
		b.in(fmt.Sprintf("layer%d", i), func() {
			bias := ""
			var rel []float32
			if p.RelPos {
				rel = b.beitBias(l+".attention.attention.relative_position_bias.relative_position_bias_table", p.grid(), gh, p.Heads)
			}
			if shared != nil {
				if rel == nil {
					rel = shared
				} else {
					rel = slices.Clone(rel)
					for j := range rel {
						rel[j] += shared[j]
					}
				}
			}
			if rel != nil && b.err == nil {
				bias = b.constF(l+".attention.relative_position_bias", []int64{1, int64(p.Heads), int64(seq), int64(seq)}, rel)
			}
			a := b.selfAttention(b.layerNorm(x, l+".layernorm_before", p.Eps), l+".attention", seq, p.vitParams, bias)
			if p.LayerScale > 0 {
				a = b.scaleBy(a, l+".lambda_1")
			}
			x = b.add(a, x)
			y := b.mlp(b.layerNorm(x, l+".layernorm_after", p.Eps), l+".intermediate.dense", l+".output.dense", p.Act)
			if p.LayerScale > 0 {
				y = b.scaleBy(y, l+".lambda_2")
			}
			x = b.add(y, x)
		})
	}
	b.in("head", func() {
		var pooled string
		if p.MeanPool {
			mean := b.reduceMean(b.slice(x, 1, 1, int64(seq)), false, 1)
			pooled = b.layerNorm(mean, pre+"pooler.layernorm", p.Eps)
		} else {
			pooled = b.gather(b.layerNorm(x, pre+"layernorm", p.Eps), 1, 0)
		}
		b.output("logits", b.linear(pooled, "classifier"), int64(p.Labels))
	})
	return b.err
}

// beitBias gathers a relative position bias table of a g×g training window,
// [(2g-1)²+3, heads], into the [heads, S, S] bias added to the attention
// scores of an n×n window (S = 1+n²). When n differs from g, the
// (2g-1)×(2g-1) part of the table is first resized to (2n-1)×(2n-1) with
// bilinear interpolation and the three CLS rows kept, as
// BeitRelativePositionBias.forward does for another resolution.
func (b *builder) beitBias(table string, g, n, heads int) []float32 {
	rows := (2*g-1)*(2*g-1) + 3
	t := b.paramData(table, int64(rows), int64(heads))
	if t == nil {
		return nil
	}
	if n != g {
		t = resizeBiasTable(t, g, n, heads)
	}
	idx := beitRelativeIndex(n, n)
	s := 1 + n*n
	out := make([]float32, heads*s*s)
	for i, r := range idx {
		for h := 0; h < heads; h++ {
			out[h*s*s+i] = t[r*heads+h]
		}
	}
	return out
}

// resizeBiasTable resizes a [(2g-1)²+3, heads] table to [(2n-1)²+3, heads].
func resizeBiasTable(t []float32, g, n, heads int) []float32 {
	m, k := 2*g-1, 2*n-1
	planes := make([]float64, heads*m*m) // [heads, m, m], as interpolate sees it
	for r := 0; r < m*m; r++ {
		for h := 0; h < heads; h++ {
			planes[h*m*m+r] = float64(t[r*heads+h])
		}
	}
	res := bilinearResize(planes, heads, m, m, k, k)
	out := make([]float32, (k*k+3)*heads)
	for r := 0; r < k*k; r++ {
		for h := 0; h < heads; h++ {
			out[r*heads+h] = float32(res[h*k*k+r])
		}
	}
	copy(out[k*k*heads:], t[m*m*heads:])
	return out
}

// beitRelativeIndex is BeitRelativePositionBias.generate_relative_position_index
// for a gh×gw window, flattened [S·S] with S = 1+gh·gw: for patch tokens
// i=(yi,xi), j=(yj,xj) the index is (yi-yj+gh-1)·(2gw-1) + (xi-xj+gw-1); row 0
// (CLS → token) is rows-3, column 0 (token → CLS) rows-2, and [0,0] rows-1,
// where rows = (2gh-1)(2gw-1)+3.
func beitRelativeIndex(gh, gw int) []int {
	n := gh * gw
	s := n + 1
	rows := (2*gh-1)*(2*gw-1) + 3
	idx := make([]int, s*s)
	for i := 0; i < n; i++ {
		yi, xi := i/gw, i%gw
		for j := 0; j < n; j++ {
			yj, xj := j/gw, j%gw
			idx[(i+1)*s+(j+1)] = (yi-yj+gh-1)*(2*gw-1) + (xi - xj + gw - 1)
		}
	}
	for j := 0; j < s; j++ {
		idx[j] = rows - 3
	}
	for i := 0; i < s; i++ {
		idx[i*s] = rows - 2
	}
	idx[0] = rows - 1
	return idx
}
