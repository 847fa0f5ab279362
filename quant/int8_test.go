package quant

import (
	"errors"
	"math"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// int8Cases are [rows, cols] weights with the adversarial rows the scheme
// must get exactly right.
func int8Cases() map[string][]float32 {
	cases := adversarialBlocks()
	// exact ties: SCB 127 makes scale exactly 1, SCB 254 makes it 0.5
	ties := make([]float32, 0, 128)
	for k := -63; k < 64; k++ {
		ties = append(ties, float32(k)+0.5)
	}
	ties = append(ties, 127)
	cases["ties-scale-1"] = ties
	ties2 := make([]float32, 0, 128)
	for k := -63; k < 64; k++ {
		ties2 = append(ties2, float32(2*k+1))
	}
	ties2 = append(ties2, -254)
	cases["ties-scale-half"] = ties2
	// SCB just above and below where 127/SCB overflows float32
	edge := normals(newRand(3), 64, 1)
	for i := range edge {
		edge[i] *= 3.7e-37
	}
	cases["scale-overflow-edge"] = edge
	return cases
}

func TestQuantizeInt8Rows(t *testing.T) {
	for name, src := range int8Cases() {
		for _, cols := range []int{64, 32, 1, len(src)} {
			if len(src)%cols != 0 {
				continue
			}
			rows := len(src) / cols
			bothPaths(t, func(t *testing.T) {
				q := make([]int8, len(src))
				scb := make([]float32, rows)
				if err := QuantizeInt8Rows(q, scb, src, rows, cols); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				deq := make([]float32, len(src))
				if err := DequantizeInt8Rows(deq, q, scb, rows, cols); err != nil {
					t.Fatal(err)
				}
				for r := 0; r < rows; r++ {
					row := src[r*cols : (r+1)*cols]
					ws, wq := refInt8Row(row)
					if math.Float32bits(scb[r]) != math.Float32bits(ws) {
						t.Fatalf("%s cols=%d row %d: SCB = %g, want %g", name, cols, r, scb[r], ws)
					}
					for i := range row {
						if got := q[r*cols+i]; got != wq[i] {
							t.Fatalf("%s cols=%d [%d,%d] x=%g: q = %d, want %d", name, cols, r, i, row[i], got, wq[i])
						}
						// Bound: rounding x·scale is off by ≤ 0.5 step of
						// SCB/127; the float32 roundings of scale, x·scale,
						// q·SCB, the product with float32(1/127) and that
						// constant itself add at most 5·2^-24 relative to
						// SCB. SCB·2^-21 covers them.
						bound := float64(ws)/254 + float64(ws)*0x1p-21
						if d := math.Abs(float64(row[i]) - float64(deq[r*cols+i])); d > bound {
							t.Fatalf("%s [%d,%d]: |x-x̂| = %g > %g", name, r, i, d, bound)
						}
					}
				}
			})
		}
	}
}

func TestQuantizeInt8RowsRandom(t *testing.T) {
	r := newRand(4)
	for _, shape := range [][2]int{{1, 1}, {3, 31}, {7, 33}, {16, 768}, {5, 1000}} {
		src := normals(r, shape[0]*shape[1], 0.05)
		src = append(src[:0], src...)
		bothPaths(t, func(t *testing.T) {
			q := make([]int8, len(src))
			scb := make([]float32, shape[0])
			if err := QuantizeInt8Rows(q, scb, src, shape[0], shape[1]); err != nil {
				t.Fatal(err)
			}
			for row := 0; row < shape[0]; row++ {
				_, wq := refInt8Row(src[row*shape[1] : (row+1)*shape[1]])
				for i, w := range wq {
					if q[row*shape[1]+i] != w {
						t.Fatalf("%v [%d,%d]: %d, want %d", shape, row, i, q[row*shape[1]+i], w)
					}
				}
			}
		})
	}
}

func TestInt8Dequant(t *testing.T) {
	// bitsandbytes: A * stats * 7.874015718698502e-3, in float32
	q := []int8{-127, -1, 0, 1, 64, 127}
	scb := []float32{0.37}
	dst := make([]float32, len(q))
	if err := DequantizeInt8Rows(dst, q, scb, 1, len(q)); err != nil {
		t.Fatal(err)
	}
	for i, v := range q {
		want := float32(float32(float32(v)*0.37) * float32(7.874015718698502e-3))
		if dst[i] != want {
			t.Errorf("q=%d: %g, want %g", v, dst[i], want)
		}
	}
	if inv127 != float32(7.874015718698502e-3) {
		t.Errorf("inv127 = %g, want bitsandbytes' 7.874015718698502e-3", inv127)
	}
}

func TestInt8Errors(t *testing.T) {
	src := []float32{1, 2, 3, float32(math.NaN()), 5, 6}
	err := QuantizeInt8Rows(make([]int8, 6), make([]float32, 2), src, 2, 3)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Index != 3 || !errors.Is(err, ErrNonFinite) || fault.ClassOf(err) != fault.Invalid {
		t.Errorf("NaN: err = %v (%T), want NonFiniteError at 3, class invalid", err, err)
	}
	src[3] = float32(math.Inf(-1))
	if err := QuantizeInt8Rows(make([]int8, 6), make([]float32, 2), src, 2, 3); !errors.As(err, &nf) || nf.Index != 3 {
		t.Errorf("-Inf: err = %v", err)
	}
	for _, c := range []struct {
		q          int
		scb        int
		src        int
		rows, cols int
	}{
		{6, 2, 5, 2, 3}, {5, 2, 6, 2, 3}, {6, 1, 6, 2, 3}, {0, 0, 0, -1, 0}, {0, 0, 0, 1 << 62, 1 << 62},
	} {
		err := QuantizeInt8Rows(make([]int8, c.q), make([]float32, c.scb), make([]float32, c.src), c.rows, c.cols)
		if !errors.Is(err, ErrLength) {
			t.Errorf("%+v: err = %v, want ErrLength", c, err)
		}
		err = DequantizeInt8Rows(make([]float32, c.src), make([]int8, c.q), make([]float32, c.scb), c.rows, c.cols)
		if !errors.Is(err, ErrLength) {
			t.Errorf("dequant %+v: err = %v, want ErrLength", c, err)
		}
	}
	if err := QuantizeInt8Rows(nil, nil, nil, 0, 5); err != nil {
		t.Errorf("empty: %v", err)
	}
}
