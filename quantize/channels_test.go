package quantize

import (
	"math"
	"testing"

	"github.com/quantpack/quantpack/quant"
	"github.com/quantpack/quantpack/verify"
)

// TestChannelStats checks the per-channel moments against sums taken
// directly in float64, across batches of different shapes, through the
// float16 path, and the refusals.
func TestChannelStats(t *testing.T) {
	const k = 5
	var rows [][]float32
	c := NewChannelStats()
	for b, n := range []int{3, 1, 4} {
		v := make([]float32, n*2*k) // [n, 2, k]
		for i := range v {
			v[i] = float32(math.Sin(float64(i*7+b)) * float64(1+i%k))
		}
		for r := 0; r < 2*n; r++ {
			rows = append(rows, v[r*k:(r+1)*k])
		}
		if err := c.Add(&verify.Tensor{Name: "x", DType: verify.Float32, Shape: []int64{int64(n), 2, k}, F32: v}); err != nil {
			t.Fatal(err)
		}
	}
	h := []float32{1, -2, 0.5, 3, -0.25}
	u := make([]uint16, k)
	quant.F32ToF16(u, h)
	if err := c.Add(&verify.Tensor{Name: "x", DType: verify.Float16, Shape: []int64{1, k}, U16: u}); err != nil {
		t.Fatal(err)
	}
	rows = append(rows, h) // exact in fp16
	if c.Rows != int64(len(rows)) {
		t.Fatalf("rows %d, want %d", c.Rows, len(rows))
	}
	ma, ms := c.Means()
	for j := 0; j < k; j++ {
		var a, s float64
		for _, r := range rows {
			a += math.Abs(float64(r[j]))
			s += float64(r[j]) * float64(r[j])
		}
		a, s = a/float64(len(rows)), s/float64(len(rows))
		// Means are snapped to 12 significant bits: relative 2^-13.
		if math.Abs(ma[j]-a) > a*0x1p-12 || math.Abs(ms[j]-s) > s*0x1p-12 {
			t.Errorf("channel %d: means %v, %v; want %v, %v", j, ma[j], ms[j], a, s)
		}
	}
	if err := c.Add(&verify.Tensor{Name: "x", DType: verify.Float32, Shape: []int64{1, k + 1}, F32: make([]float32, k+1)}); err == nil {
		t.Error("a batch with another channel count was accepted")
	}
	if err := c.Add(&verify.Tensor{Name: "x", DType: verify.Float32, Shape: []int64{2, k}, F32: make([]float32, k)}); err == nil {
		t.Error("a tensor whose values do not fill its shape was accepted")
	}
}
