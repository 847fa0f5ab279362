package convert

import (
	"fmt"
	"math"
)

// Position embeddings are learned for the checkpoint's grid (image_size /
// patch_size squared). Exporting for another input size resizes them at
// export time, in float64, exactly as transformers' interpolate_pos_encoding
// does (ViT, DeiT, DINOv2 in transformers 4.47):
//
//	patch_pos = pos[:, tokens:].reshape(1, g, g, dim).permute(0, 3, 1, 2)
//	patch_pos = interpolate(patch_pos, size=(H/P, W/P), mode="bicubic", align_corners=False)
//	pos = cat(pos[:, :tokens], patch_pos.permute(0, 2, 3, 1).view(1, -1, dim))
//
// so the graph holds a constant of the new length and no resize node.

// resizePosEmbed returns the [1, tokens+gh·gw, dim] position embeddings for
// a gh×gw patch grid from pos [1, tokens+g·g, dim]. When the grid is the
// checkpoint's, pos is returned unchanged (transformers skips interpolation
// then too).
func resizePosEmbed(pos []float32, tokens, dim, gh, gw int) ([]float32, error) {
	n := len(pos)/dim - tokens
	g := int(math.Sqrt(float64(n)))
	if g*g != n || len(pos) != (tokens+n)*dim {
		return nil, fmt.Errorf("%w: position embeddings of %d values are not [1, %d+g², %d]", ErrTensorShape, len(pos), tokens, dim)
	}
	if gh == g && gw == g {
		return pos, nil
	}
	// [g·g, dim] → [dim, g, g] (channels first, as interpolate sees it).
	grid := make([]float64, dim*n)
	for p := 0; p < n; p++ {
		for c := 0; c < dim; c++ {
			grid[c*n+p] = float64(pos[(tokens+p)*dim+c])
		}
	}
	res := bicubicResize(grid, dim, g, g, gh, gw)
	out := make([]float32, (tokens+gh*gw)*dim)
	copy(out, pos[:tokens*dim])
	m := gh * gw
	for p := 0; p < m; p++ {
		for c := 0; c < dim; c++ {
			out[(tokens+p)*dim+c] = float32(res[c*m+p])
		}
	}
	return out, nil
}

// bicubicA is PyTorch's cubic convolution coefficient (Keys, a = -0.75).
const bicubicA = -0.75

// bicubicResize resizes channels planes of inH×inW to outH×outW like
// torch.nn.functional.interpolate(mode="bicubic", align_corners=False) given
// size= (so the scale is in/out): source coordinate (dst+0.5)·scale-0.5, not
// clamped; four taps per axis with indices clamped to the border
// (upsample_get_value_bounded); separable, x first.
func bicubicResize(src []float64, channels, inH, inW, outH, outW int) []float64 {
	ys, wy := cubicTaps(inH, outH)
	xs, wx := cubicTaps(inW, outW)
	return separableResize(src, channels, inH, inW, outH, outW, 4, ys, wy, xs, wx)
}

// separableResize applies k taps per axis (indices and weights per output
// index, as cubicTaps and linearTaps return them): each output is
// Σ_i wy·(Σ_j wx·src), summed in tap order.
func separableResize(src []float64, channels, inH, inW, outH, outW, k int, ys []int, wy []float64, xs []int, wx []float64) []float64 {
	out := make([]float64, channels*outH*outW)
	for c := 0; c < channels; c++ {
		plane := src[c*inH*inW : (c+1)*inH*inW]
		for oy := 0; oy < outH; oy++ {
			for ox := 0; ox < outW; ox++ {
				var acc float64
				for i := 0; i < k; i++ {
					row := plane[ys[oy*k+i]*inW:]
					var r float64
					for j := 0; j < k; j++ {
						r += wx[ox*k+j] * row[xs[ox*k+j]]
					}
					acc += wy[oy*k+i] * r
				}
				out[(c*outH+oy)*outW+ox] = acc
			}
		}
	}
	return out
}

// cubicTaps returns, per output index, the four clamped input indices and
// their weights.
func cubicTaps(in, out int) ([]int, []float64) {
	scale := float64(in) / float64(out)
	idx := make([]int, 4*out)
	w := make([]float64, 4*out)
	for o := 0; o < out; o++ {
		real := scale*(float64(o)+0.5) - 0.5
		i0 := int(math.Floor(real))
		t := real - float64(i0)
		c := cubicCoeffs(t)
		for j := 0; j < 4; j++ {
			idx[4*o+j] = min(max(i0-1+j, 0), in-1)
			w[4*o+j] = c[j]
		}
	}
	return idx, w
}

// cubicCoeffs are PyTorch's get_cubic_upsample_coefficients(t).
func cubicCoeffs(t float64) [4]float64 {
	const a = bicubicA
	conv1 := func(x float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }
	conv2 := func(x float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a }
	return [4]float64{conv2(t + 1), conv1(t), conv1(1 - t), conv2(2 - t)}
}

// bilinearResize resizes channels planes of inH×inW to outH×outW like
// torch.nn.functional.interpolate(mode="bilinear", align_corners=False)
// given size=: source coordinate (dst+0.5)·in/out-0.5 clamped at 0, two taps
// per axis, the upper one clamped to the last row or column
// (upsample_bilinear2d).
func bilinearResize(src []float64, channels, inH, inW, outH, outW int) []float64 {
	ys, wy := linearTaps(inH, outH)
	xs, wx := linearTaps(inW, outW)
	return separableResize(src, channels, inH, inW, outH, outW, 2, ys, wy, xs, wx)
}

// linearTaps returns, per output index, the two input indices and weights.
func linearTaps(in, out int) ([]int, []float64) {
	scale := float64(in) / float64(out)
	idx := make([]int, 2*out)
	w := make([]float64, 2*out)
	for o := 0; o < out; o++ {
		real := max(scale*(float64(o)+0.5)-0.5, 0)
		i0 := int(real)
		l := real - float64(i0)
		idx[2*o], idx[2*o+1] = i0, min(i0+1, in-1)
		w[2*o], w[2*o+1] = 1-l, l
	}
	return idx, w
}
