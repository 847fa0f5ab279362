//go:build amd64 && !purego

#include "textflag.h"

DATA absMask<>+0(SB)/4, $0x7fffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $4

// 65520 - 1 ulp: |x| above this (and finite) overflows half precision.
DATA f16OvMinus<>+0(SB)/4, $0x477fefff
GLOBL f16OvMinus<>(SB), RODATA|NOPTR, $4

DATA infBits<>+0(SB)/4, $0x7f800000
GLOBL infBits<>(SB), RODATA|NOPTR, $4

// 0x7F7F8000 - 1: finite |x| above this rounds to bfloat16 infinity.
DATA bf16OvMinus<>+0(SB)/4, $0x7f7f7fff
GLOBL bf16OvMinus<>(SB), RODATA|NOPTR, $4

DATA one<>+0(SB)/4, $1
GLOBL one<>(SB), RODATA|NOPTR, $4

DATA bf16Bias<>+0(SB)/4, $0x7fff
GLOBL bf16Bias<>(SB), RODATA|NOPTR, $4

DATA bf16QuietBit<>+0(SB)/4, $0x40
GLOBL bf16QuietBit<>(SB), RODATA|NOPTR, $4

// Dword order that undoes the lane interleaving of VPACKSSDW/VPACKSSWB.
DATA packPerm<>+0(SB)/4, $0
DATA packPerm<>+4(SB)/4, $4
DATA packPerm<>+8(SB)/4, $1
DATA packPerm<>+12(SB)/4, $5
DATA packPerm<>+16(SB)/4, $2
DATA packPerm<>+20(SB)/4, $6
DATA packPerm<>+24(SB)/4, $3
DATA packPerm<>+28(SB)/4, $7
GLOBL packPerm<>(SB), RODATA|NOPTR, $32

// VPSHUFB mask gathering byte 0 of each dword into the low dword of a lane.
DATA lowBytes<>+0(SB)/8, $0x808080800c080400
DATA lowBytes<>+8(SB)/8, $0x8080808080808080
DATA lowBytes<>+16(SB)/8, $0x808080800c080400
DATA lowBytes<>+24(SB)/8, $0x8080808080808080
GLOBL lowBytes<>(SB), RODATA|NOPTR, $32

// func f32ToF16AVX2(dst *uint16, src *float32, n int) (overflow int)
// n is a multiple of 16. VCVTPS2PH with immediate 0 rounds to nearest even
// regardless of MXCSR; NaNs come out quiet with the top payload bits.
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ R8, R8
	VPBROADCASTD absMask<>(SB), Y13
	VPBROADCASTD f16OvMinus<>(SB), Y14
	VPBROADCASTD infBits<>(SB), Y15

f16loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VCVTPS2PH $0, Y0, X2
	VCVTPS2PH $0, Y1, X3
	VMOVDQU X2, (DI)
	VMOVDQU X3, 16(DI)
	// overflow: 0x477fefff < |x| < 0x7f800000, as signed dwords
	VPAND Y13, Y0, Y4
	VPAND Y13, Y1, Y5
	VPCMPGTD Y14, Y4, Y6
	VPCMPGTD Y4, Y15, Y7
	VPAND Y7, Y6, Y6
	VPCMPGTD Y14, Y5, Y8
	VPCMPGTD Y5, Y15, Y9
	VPAND Y9, Y8, Y8
	VPACKSSDW Y8, Y6, Y6
	VPMOVMSKB Y6, AX
	POPCNTL AX, AX
	SHRL $1, AX
	ADDQ AX, R8
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ f16loop

	VZEROUPPER
	MOVQ R8, overflow+24(FP)
	RET

// func f16ToF32AVX2(dst *float32, src *uint16, n int)
// n is a multiple of 16.
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

h2floop:
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ h2floop

	VZEROUPPER
	RET

// func f32ToBF16AVX2(dst *uint16, src *float32, n int) (overflow int)
// n is a multiple of 16. Same arithmetic as f32ToBF16Go: round by adding
// 0x7fff plus the lowest kept bit, NaN → top half | quiet bit.
TEXT ·f32ToBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ R8, R8
	VPBROADCASTD absMask<>(SB), Y10
	VPBROADCASTD bf16OvMinus<>(SB), Y11
	VPBROADCASTD infBits<>(SB), Y12
	VPBROADCASTD one<>(SB), Y13
	VPBROADCASTD bf16Bias<>(SB), Y14
	VPBROADCASTD bf16QuietBit<>(SB), Y15

bf16loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1

	VPSRLD $16, Y0, Y2
	VPAND Y13, Y2, Y3
	VPADDD Y3, Y0, Y3
	VPADDD Y14, Y3, Y3
	VPSRLD $16, Y3, Y3 // rounded
	VPOR Y15, Y2, Y2    // NaN form
	VPAND Y10, Y0, Y4   // |x|
	VPCMPGTD Y12, Y4, Y5 // NaN mask
	VPBLENDVB Y5, Y2, Y3, Y3
	VPCMPGTD Y11, Y4, Y6
	VPCMPGTD Y4, Y12, Y7
	VPAND Y7, Y6, Y6 // overflow mask

	VPSRLD $16, Y1, Y2
	VPAND Y13, Y2, Y8
	VPADDD Y8, Y1, Y8
	VPADDD Y14, Y8, Y8
	VPSRLD $16, Y8, Y8
	VPOR Y15, Y2, Y2
	VPAND Y10, Y1, Y4
	VPCMPGTD Y12, Y4, Y5
	VPBLENDVB Y5, Y2, Y8, Y8
	VPCMPGTD Y11, Y4, Y9
	VPCMPGTD Y4, Y12, Y7
	VPAND Y7, Y9, Y9

	VPACKUSDW Y8, Y3, Y3
	VPERMQ $0xd8, Y3, Y3
	VMOVDQU Y3, (DI)

	VPACKSSDW Y9, Y6, Y6
	VPMOVMSKB Y6, AX
	POPCNTL AX, AX
	SHRL $1, AX
	ADDQ AX, R8

	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ bf16loop

	VZEROUPPER
	MOVQ R8, overflow+24(FP)
	RET

// func absMaxBitsAVX2(src *float32, n int) uint32
// n is a positive multiple of 32. |x| bits are compared as signed dwords,
// which orders them like unsigned ones since bit 31 is clear.
TEXT ·absMaxBitsAVX2(SB), NOSPLIT, $0-20
	MOVQ src+0(FP), SI
	MOVQ n+8(FP), CX
	VPBROADCASTD absMask<>(SB), Y15
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

amloop:
	VPAND (SI), Y15, Y4
	VPAND 32(SI), Y15, Y5
	VPAND 64(SI), Y15, Y6
	VPAND 96(SI), Y15, Y7
	VPMAXSD Y4, Y0, Y0
	VPMAXSD Y5, Y1, Y1
	VPMAXSD Y6, Y2, Y2
	VPMAXSD Y7, Y3, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JNZ amloop

	VPMAXSD Y1, Y0, Y0
	VPMAXSD Y3, Y2, Y2
	VPMAXSD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXSD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXSD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXSD X1, X0, X0
	VMOVD X0, AX
	VZEROUPPER
	MOVL AX, ret+16(FP)
	RET

// func quantizeInt8AVX2(dst *int8, src *float32, n int, scale float32)
// n is a positive multiple of 32. VCVTPS2DQ rounds with MXCSR, which Go
// leaves at round-to-nearest-even; |x·scale| ≤ 127.5 so packing never
// saturates.
TEXT ·quantizeInt8AVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y15
	VMOVDQU packPerm<>(SB), Y14

i8loop:
	VMULPS (SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	VMULPS 64(SI), Y15, Y2
	VMULPS 96(SI), Y15, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y14, Y0
	VMOVDQU Y0, (DI)
	ADDQ $128, SI
	ADDQ $32, DI
	SUBQ $32, CX
	JNZ i8loop

	VZEROUPPER
	RET

// func nf4PairsAVX2(dst *byte, src *float32, pairs int, r float32, thr *[15][8]float32)
// pairs is a positive multiple of 8. Each code is the number of thresholds
// strictly below float32(x·r): every VCMPPS GT that holds subtracts -1.
// Byte j is code(2j)<<4 | code(2j+1).
TEXT ·nf4PairsAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ pairs+16(FP), CX
	VBROADCASTSS r+24(FP), Y15
	MOVQ thr+32(FP), R9
	VMOVDQU lowBytes<>(SB), Y14

nf4loop:
	VMULPS (SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	// even elements [0 2 8 10 | 4 6 12 14], odd [1 3 9 11 | 5 7 13 15]
	VSHUFPS $0x88, Y1, Y0, Y2
	VSHUFPS $0xdd, Y1, Y0, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5

#define STEP(off) \
	VCMPPS $0x1e, off(R9), Y2, Y6 \
	VCMPPS $0x1e, off(R9), Y3, Y7 \
	VPSUBD Y6, Y4, Y4 \
	VPSUBD Y7, Y5, Y5

	STEP(0)
	STEP(32)
	STEP(64)
	STEP(96)
	STEP(128)
	STEP(160)
	STEP(192)
	STEP(224)
	STEP(256)
	STEP(288)
	STEP(320)
	STEP(352)
	STEP(384)
	STEP(416)
	STEP(448)

#undef STEP

	VPSLLD $4, Y4, Y4
	VPOR Y5, Y4, Y4 // dword k of lane 0: pair [0 1 4 5][k], lane 1: [2 3 6 7][k]
	VPSHUFB Y14, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPUNPCKLWD X5, X4, X4 // pairs 0 1 | 2 3 | 4 5 | 6 7
	VMOVQ X4, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	SUBQ $8, CX
	JNZ nf4loop

	VZEROUPPER
	RET

DATA absMaskPD<>+0(SB)/8, $0x7fffffffffffffff
DATA absMaskPD<>+8(SB)/8, $0x7fffffffffffffff
DATA absMaskPD<>+16(SB)/8, $0x7fffffffffffffff
DATA absMaskPD<>+24(SB)/8, $0x7fffffffffffffff
GLOBL absMaskPD<>(SB), RODATA|NOPTR, $32

// HSUM reduces accumulators a and b (4 float64 lanes each) to one float64
// in the low lane of a, in a fixed order: s = a+b lanewise, then
// (s0+s2) + (s1+s3). Clobbers b.
#define HSUM(a, b, xa, xb) \
	VADDPD b, a, a \
	VEXTRACTF128 $1, a, xb \
	VADDPD xb, xa, xa \
	VUNPCKHPD xa, xa, xb \
	VADDSD xb, xa, xa

// func sumPairsAVX2(ref, got *float32, n int, out *[5]float64)
// n is a positive multiple of 8. Pair i is summed into lane i mod 8 of two
// 4-lane float64 accumulators per statistic; out receives Σref², Σ(ref-got)²,
// Σref·got, Σgot² and max|ref-got|. The float32 products ref², ref·got and
// got² are exact in float64, so fusing them into the addition (FMA) rounds
// exactly like a separate multiply and add; (ref-got)² is not, so it is
// multiplied and added separately, like sumPairsGo's terms.
TEXT ·sumPairsAVX2(SB), NOSPLIT, $0-32
	MOVQ ref+0(FP), SI
	MOVQ got+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), R8
	XORQ AX, AX
	VXORPD Y0, Y0, Y0 // Σref²
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2 // Σ(ref-got)²
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4 // Σref·got
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6 // Σgot²
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8 // max|ref-got|
	VXORPD Y9, Y9, Y9

sploop:
	VCVTPS2PD (SI)(AX*4), Y10   // x, pairs 0-3
	VCVTPS2PD (DI)(AX*4), Y11   // y
	VCVTPS2PD 16(SI)(AX*4), Y13 // x, pairs 4-7
	VCVTPS2PD 16(DI)(AX*4), Y14 // y
	VSUBPD Y11, Y10, Y12        // e = x-y
	VSUBPD Y14, Y13, Y15
	VFMADD231PD Y10, Y10, Y0
	VFMADD231PD Y13, Y13, Y1
	VFMADD231PD Y11, Y10, Y4
	VFMADD231PD Y14, Y13, Y5
	VFMADD231PD Y11, Y11, Y6
	VFMADD231PD Y14, Y14, Y7
	VMULPD Y12, Y12, Y10
	VMULPD Y15, Y15, Y13
	VADDPD Y10, Y2, Y2
	VADDPD Y13, Y3, Y3
	VANDPD absMaskPD<>(SB), Y12, Y12
	VANDPD absMaskPD<>(SB), Y15, Y15
	VMAXPD Y12, Y8, Y8
	VMAXPD Y15, Y9, Y9
	ADDQ $8, AX
	CMPQ AX, CX
	JB sploop

	HSUM(Y0, Y1, X0, X1)
	HSUM(Y2, Y3, X2, X3)
	HSUM(Y4, Y5, X4, X5)
	HSUM(Y6, Y7, X6, X7)
	VMAXPD Y9, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VMAXPD X9, X8, X8
	VUNPCKHPD X8, X8, X9
	VMAXSD X9, X8, X8
	VMOVSD X0, 0(R8)
	VMOVSD X2, 8(R8)
	VMOVSD X4, 16(R8)
	VMOVSD X6, 24(R8)
	VMOVSD X8, 32(R8)
	VZEROUPPER
	RET

#undef HSUM

DATA nibbleMask<>+0(SB)/4, $15
GLOBL nibbleMask<>(SB), RODATA|NOPTR, $4

// func dequantNF4AVX2(dst *float32, src *byte, n int, am float32, book *[16]float32)
// n (bytes) is a positive multiple of 8. The codebook is scaled by am once
// (the same float32 products as book[c]·am per element); each code picks
// from its lower or upper half by VPERMPS on bits 0-2 and a blend on bit 3.
// Byte j gives dst[2j] = code(hi nibble), dst[2j+1] = code(lo nibble).
TEXT ·dequantNF4AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS am+24(FP), Y13
	MOVQ book+32(FP), R9
	VMULPS (R9), Y13, Y14   // codes 0-7 · am
	VMULPS 32(R9), Y13, Y15 // codes 8-15 · am
	VPBROADCASTD nibbleMask<>(SB), Y12

dnf4loop:
	VPMOVZXBD (SI), Y0
	VPSRLD $4, Y0, Y1        // hi nibbles of bytes 0-7
	VPAND Y12, Y0, Y2        // lo nibbles
	VPUNPCKLDQ Y2, Y1, Y3    // [h0 l0 h1 l1 | h4 l4 h5 l5]
	VPUNPCKHDQ Y2, Y1, Y4    // [h2 l2 h3 l3 | h6 l6 h7 l7]
	VPERM2I128 $0x20, Y4, Y3, Y5 // codes of elements 0-7
	VPERM2I128 $0x31, Y4, Y3, Y6 // 8-15
	VPERMPS Y14, Y5, Y7
	VPERMPS Y15, Y5, Y8
	VPSLLD $28, Y5, Y5       // bit 3 to the sign
	VBLENDVPS Y5, Y8, Y7, Y7
	VPERMPS Y14, Y6, Y9
	VPERMPS Y15, Y6, Y10
	VPSLLD $28, Y6, Y6
	VBLENDVPS Y6, Y10, Y9, Y9
	VMOVUPS Y7, (DI)
	VMOVUPS Y9, 32(DI)
	ADDQ $8, SI
	ADDQ $64, DI
	SUBQ $8, CX
	JNZ dnf4loop

	VZEROUPPER
	RET
