package quant

import (
	"bytes"
	"testing"
)

func TestNibbles(t *testing.T) {
	codes := []uint8{1, 2, 3}
	lo, hi := make([]byte, 2), make([]byte, 2)
	PackNibblesLowFirst(lo, codes)
	PackNibblesHighFirst(hi, codes)
	if !bytes.Equal(lo, []byte{0x21, 0x03}) || !bytes.Equal(hi, []byte{0x12, 0x30}) {
		t.Errorf("low first % x, high first % x; want 21 03 and 12 30", lo, hi)
	}
	r := newRand(10)
	for n := 0; n < 40; n++ {
		c := make([]uint8, n)
		for i := range c {
			c[i] = uint8(r.IntN(16))
		}
		for _, order := range []struct {
			pack   func([]byte, []uint8)
			unpack func([]uint8, []byte)
		}{{PackNibblesLowFirst, UnpackNibblesLowFirst}, {PackNibblesHighFirst, UnpackNibblesHighFirst}} {
			p := make([]byte, (n+1)/2)
			order.pack(p, c)
			back := make([]uint8, n)
			order.unpack(back, p)
			if !bytes.Equal(back, c) {
				t.Fatalf("n=%d: %v → % x → %v", n, c, p, back)
			}
		}
		// the two orders are each other's nibble swap
		a, b := make([]byte, (n+1)/2), make([]byte, (n+1)/2)
		PackNibblesLowFirst(a, c)
		PackNibblesHighFirst(b, c)
		for i := range a {
			if a[i] != b[i]>>4|b[i]<<4 {
				t.Fatalf("n=%d byte %d: %#x vs %#x", n, i, a[i], b[i])
			}
		}
	}
	// codes above 15 keep their low bits
	PackNibblesLowFirst(lo, []uint8{0x1F, 0x2E})
	if lo[0] != 0xEF {
		t.Errorf("masking: %#x, want 0xef", lo[0])
	}
}
