package quant

import "testing"

// Benchmarks run on a ViT-Base MLP weight, [3072, 768] float32 (9.4 MB, more
// than the caches hold), and report GB/s of float32 input. Each has an
// "asm" and a "go" variant where both kernels exist.

const benchRows, benchCols = 3072, 768

var benchSrc = normals(newRand(99), benchRows*benchCols, 0.02)

func benchPaths(b *testing.B, f func(b *testing.B)) {
	for _, asm := range []bool{true, false} {
		if asm && !hasAVX2 {
			continue
		}
		name := "go"
		if asm {
			name = "asm"
		}
		b.Run(name, func(b *testing.B) {
			old := useAsm
			useAsm = asm
			defer func() { useAsm = old }()
			b.SetBytes(int64(len(benchSrc) * 4))
			b.ReportAllocs()
			f(b)
		})
	}
}

// BenchmarkMemcpy is the yardstick: copying the same bytes.
func BenchmarkMemcpy(b *testing.B) {
	dst := make([]float32, len(benchSrc))
	b.SetBytes(int64(len(benchSrc) * 4))
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, benchSrc)
	}
}

func BenchmarkF32ToF16(b *testing.B) {
	dst := make([]uint16, len(benchSrc))
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			F32ToF16(dst, benchSrc)
		}
	})
}

func BenchmarkF16ToF32(b *testing.B) {
	h := make([]uint16, len(benchSrc))
	F32ToF16(h, benchSrc)
	dst := make([]float32, len(benchSrc))
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			F16ToF32(dst, h)
		}
	})
}

func BenchmarkF32ToBF16(b *testing.B) {
	dst := make([]uint16, len(benchSrc))
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			F32ToBF16(dst, benchSrc)
		}
	})
}

func BenchmarkQuantizeInt8Rows(b *testing.B) {
	q := make([]int8, len(benchSrc))
	scb := make([]float32, benchRows)
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			if err := QuantizeInt8Rows(q, scb, benchSrc, benchRows, benchCols); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkQuantizeInt4(b *testing.B) {
	for _, p := range []Int4Params{{BlockSize: 32, Symmetric: true}, {BlockSize: 32}} {
		name := "sym"
		if !p.Symmetric {
			name = "asym"
		}
		b.Run(name, func(b *testing.B) {
			np, ns, nz := Int4Sizes(benchRows, benchCols, p)
			packed, scales, zeros := make([]byte, np), make([]float32, ns), make([]byte, nz)
			b.SetBytes(int64(len(benchSrc) * 4))
			b.ReportAllocs()
			for b.Loop() {
				if err := QuantizeInt4(packed, scales, zeros, benchSrc, benchRows, benchCols, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQuantizeNF4(b *testing.B) {
	np, na := NF4Sizes(len(benchSrc), 64)
	packed, absmax := make([]byte, np), make([]float32, na)
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			if err := QuantizeNF4(packed, absmax, benchSrc, 64); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQuantizeNF4DoubleQuant is the whole NF4 artifact path: codes,
// then the block scales compressed (the speed target's definition).
func BenchmarkQuantizeNF4DoubleQuant(b *testing.B) {
	np, na := NF4Sizes(len(benchSrc), 64)
	packed, absmax := make([]byte, np), make([]float32, na)
	codes, nested := make([]uint8, na), make([]float32, (na+255)/256)
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			if err := QuantizeNF4(packed, absmax, benchSrc, 64); err != nil {
				b.Fatal(err)
			}
			if _, err := DoubleQuant(codes, nested, absmax, 256); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDequantizeNF4(b *testing.B) {
	np, na := NF4Sizes(len(benchSrc), 64)
	packed, absmax := make([]byte, np), make([]float32, na)
	if err := QuantizeNF4(packed, absmax, benchSrc, 64); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, len(benchSrc))
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			if err := DequantizeNF4(dst, packed, absmax, 64); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCompare(b *testing.B) {
	got := make([]float32, len(benchSrc))
	copy(got, benchSrc)
	got[5] += 1
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			_ = Compare(benchSrc, got)
		}
	})
}
