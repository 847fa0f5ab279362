package convert

import (
	"math"
	"testing"
)

// beitVariantConfig is a two-layer BEiT config (relative position bias per
// layer, mean pooling, layer scale 0.1), then edit applied.
func beitVariantConfig(edit map[string]any) map[string]any {
	c := variantConfig("BeitForImageClassification", map[string]any{"model_type": "beit", "use_absolute_position_embeddings": false,
		"use_relative_position_bias": true, "use_shared_relative_position_bias": false, "use_mean_pooling": true,
		"layer_scale_init_value": 0.1})
	for k, v := range edit {
		c[k] = v
	}
	return c
}

// TestBeitConfigVariants: the shared relative position bias alone and with
// the per-layer one, absolute position embeddings, the bias table resized
// for 48×48 and 24×24 exports, CLS pooling without layer scale (plain ONNX),
// opset 21 (runConfigVariants).
func TestBeitConfigVariants(t *testing.T) {
	runConfigVariants(t, []configVariant{
		{name: "beit shared bias opset 21", cfg: beitVariantConfig(map[string]any{"use_shared_relative_position_bias": true, "use_relative_position_bias": false}), opt: ExportOptions{Opset: 21}, h: 32, w: 32, seed: 8},
		{name: "beit both biases abs pos", cfg: beitVariantConfig(map[string]any{"use_shared_relative_position_bias": true, "use_absolute_position_embeddings": true}), h: 32, w: 32, seed: 9},
		{name: "beit at 48 (table resized)", cfg: beitVariantConfig(nil), opt: ExportOptions{ImageSize: 48}, h: 48, w: 48, seed: 10},
		{name: "beit shared bias abs pos at 24", cfg: beitVariantConfig(map[string]any{"use_shared_relative_position_bias": true, "use_absolute_position_embeddings": true}), opt: ExportOptions{ImageSize: 24}, h: 24, w: 24, seed: 11},
		{name: "beit cls pooling no layer scale", cfg: beitVariantConfig(map[string]any{"use_mean_pooling": false, "layer_scale_init_value": 0.0}), opt: ExportOptions{Plain: true}, h: 32, w: 32, seed: 12},
	})
}

// TestBeitRelativeIndex checks the index's structure: CLS entries, the
// diagonal at the centre of the table, equal offsets sharing a row and
// different offsets not, every row of the table in range.
func TestBeitRelativeIndex(t *testing.T) {
	for _, g := range [][2]int{{1, 1}, {2, 3}, {4, 4}, {14, 14}} {
		gh, gw := g[0], g[1]
		idx := beitRelativeIndex(gh, gw)
		s := 1 + gh*gw
		rows := beitTableRows(gh)
		if gh != gw {
			rows = (2*gh-1)*(2*gw-1) + 3
		}
		if idx[0] != rows-1 {
			t.Fatalf("%v: [0,0] = %d, want %d", g, idx[0], rows-1)
		}
		byOffset := map[[2]int]int{}
		byRow := map[int][2]int{}
		for i := 0; i < s; i++ {
			for j := 0; j < s; j++ {
				v := idx[i*s+j]
				switch {
				case i == 0 && j == 0:
				case i == 0:
					if v != rows-3 {
						t.Fatalf("%v: [0,%d] = %d", g, j, v)
					}
				case j == 0:
					if v != rows-2 {
						t.Fatalf("%v: [%d,0] = %d", g, i, v)
					}
				default:
					if v < 0 || v >= rows-3 {
						t.Fatalf("%v: [%d,%d] = %d out of range", g, i, j, v)
					}
					off := [2]int{(i-1)/gw - (j-1)/gw, (i-1)%gw - (j-1)%gw}
					if i == j && v != (gh-1)*(2*gw-1)+gw-1 {
						t.Fatalf("%v: diagonal %d", g, v)
					}
					if prev, ok := byOffset[off]; ok && prev != v {
						t.Fatalf("%v: offset %v maps to %d and %d", g, off, prev, v)
					}
					if prev, ok := byRow[v]; ok && prev != off {
						t.Fatalf("%v: row %d used by offsets %v and %v", g, v, prev, off)
					}
					byOffset[off], byRow[v] = v, off
				}
			}
		}
	}
}

// relBias gathers a BEiT table into [heads, S, S] from the relative offsets
// of each pair of tokens, written without the index formula of the builder.
func (n *refNet) relBias(table string, gh, gw, heads int) []float64 {
	t := n.get(table)
	rows := len(t) / heads
	if g := (int(math.Sqrt(float64(rows-3))) + 1) / 2; g != gh {
		t = refResizeTable(t, g, gh, heads)
		rows = len(t) / heads
	}
	s := 1 + gh*gw
	out := make([]float64, heads*s*s)
	for i := 0; i < s; i++ {
		for j := 0; j < s; j++ {
			var r int
			switch {
			case i == 0 && j == 0:
				r = rows - 1
			case i == 0:
				r = rows - 3
			case j == 0:
				r = rows - 2
			default:
				dy := (i-1)/gw - (j-1)/gw
				dx := (i-1)%gw - (j-1)%gw
				r = (dy+gh-1)*(2*gw-1) + dx + gw - 1
			}
			for h := 0; h < heads; h++ {
				out[(h*s+i)*s+j] = t[r*heads+h]
			}
		}
	}
	return out
}

// refResizeTable resizes the (2g-1)×(2g-1) part of a BEiT table to
// (2n-1)×(2n-1) per head with PyTorch's bilinear rule written out
// directly: source (dst+0.5)·in/out-0.5, clamped at 0, neighbours i0 and
// min(i0+1, in-1).
func refResizeTable(t []float64, g, n, heads int) []float64 {
	m, k := 2*g-1, 2*n-1
	src := func(o int) (int, int, float64) {
		x := (float64(o)+0.5)*float64(m)/float64(k) - 0.5
		if x < 0 {
			x = 0
		}
		i0 := int(math.Floor(x))
		return i0, min(i0+1, m-1), x - float64(i0)
	}
	out := make([]float64, (k*k+3)*heads)
	for y := 0; y < k; y++ {
		y0, y1, ly := src(y)
		for x := 0; x < k; x++ {
			x0, x1, lx := src(x)
			for h := 0; h < heads; h++ {
				at := func(r, c int) float64 { return t[(r*m+c)*heads+h] }
				out[(y*k+x)*heads+h] = (1-ly)*((1-lx)*at(y0, x0)+lx*at(y0, x1)) + ly*((1-lx)*at(y1, x0)+lx*at(y1, x1))
			}
		}
	}
	copy(out[k*k*heads:], t[m*m*heads:])
	return out
}
