package quant

import "testing"

// TestNoAllocs checks the package-doc promise that the kernels allocate
// nothing, including the rescaling paths for tiny and huge blocks.
func TestNoAllocs(t *testing.T) {
	cases := adversarialBlocks()
	for _, name := range []string{"normal", "tiny", "huge", "small", "zeros"} {
		src := cases[name][:128]
		np, na := NF4Sizes(len(src), 64)
		packed, absmax := make([]byte, np), make([]float32, na)
		codes, nested := make([]uint8, na), make([]float32, 1)
		q, scb := make([]int8, len(src)), make([]float32, 2)
		h := make([]uint16, len(src))
		f := make([]float32, len(src))
		p := Int4Params{BlockSize: 32, Symmetric: true}
		n4, s4, _ := Int4Sizes(2, 64, p)
		q4, sc4 := make([]byte, n4), make([]float32, s4)
		var acc ErrorAcc
		allocs := testing.AllocsPerRun(10, func() {
			_ = QuantizeNF4(packed, absmax, src, 64)
			_, _ = DoubleQuant(codes, nested, absmax, 256)
			_ = DequantizeNF4(f, packed, absmax, 64)
			_ = QuantizeInt8Rows(q, scb, src, 2, 64)
			_ = DequantizeInt8Rows(f, q, scb, 2, 64)
			_ = QuantizeInt4(q4, sc4, nil, src, 2, 64, p)
			_ = DequantizeInt4(f, q4, sc4, nil, 2, 64, p)
			F32ToF16(h, src)
			F16ToF32(f, h)
			F32ToBF16(h, src)
			BF16ToF32(f, h)
			acc.Add(src, f)
			_ = acc.Stats()
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, allocs)
		}
	}
}
