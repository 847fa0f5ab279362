package quant

// Nibble packing. Two 4-bit codes share a byte; which one goes in the low
// half differs between formats, so both orders are spelled out:
//
//   - low first (ONNX INT4/UINT4, ORT MatMulNBits, gomlx): code 2j in bits
//     0-3, code 2j+1 in bits 4-7;
//   - high first (bitsandbytes NF4/FP4, MatMulBnb4): code 2j in bits 4-7,
//     code 2j+1 in bits 0-3.
//
// An odd count leaves the last byte's other half zero. Codes above 15 keep
// only their low 4 bits.

// PackNibblesLowFirst packs codes into dst[:(len(codes)+1)/2], first code in
// the low nibble. It panics if dst is too short.
func PackNibblesLowFirst(dst []byte, codes []uint8) {
	n := len(codes) / 2
	dst = dst[:(len(codes)+1)/2]
	for j := 0; j < n; j++ {
		dst[j] = codes[2*j]&0xF | codes[2*j+1]<<4
	}
	if len(codes)%2 == 1 {
		dst[n] = codes[2*n] & 0xF
	}
}

// PackNibblesHighFirst packs codes into dst[:(len(codes)+1)/2], first code in
// the high nibble. It panics if dst is too short.
func PackNibblesHighFirst(dst []byte, codes []uint8) {
	n := len(codes) / 2
	dst = dst[:(len(codes)+1)/2]
	for j := 0; j < n; j++ {
		dst[j] = codes[2*j]<<4 | codes[2*j+1]&0xF
	}
	if len(codes)%2 == 1 {
		dst[n] = codes[2*n] << 4
	}
}

// UnpackNibblesLowFirst fills dst with the codes packed in src, low nibble
// first; len(dst) codes are read, so an odd len(dst) ignores the last high
// nibble. It panics if src holds fewer than len(dst) codes.
func UnpackNibblesLowFirst(dst []uint8, src []byte) {
	n := len(dst) / 2
	src = src[:(len(dst)+1)/2]
	for j := 0; j < n; j++ {
		b := src[j]
		dst[2*j] = b & 0xF
		dst[2*j+1] = b >> 4
	}
	if len(dst)%2 == 1 {
		dst[2*n] = src[n] & 0xF
	}
}

// UnpackNibblesHighFirst fills dst with the codes packed in src, high nibble
// first; len(dst) codes are read, so an odd len(dst) ignores the last low
// nibble. It panics if src holds fewer than len(dst) codes.
func UnpackNibblesHighFirst(dst []uint8, src []byte) {
	n := len(dst) / 2
	src = src[:(len(dst)+1)/2]
	for j := 0; j < n; j++ {
		b := src[j]
		dst[2*j] = b >> 4
		dst[2*j+1] = b & 0xF
	}
	if len(dst)%2 == 1 {
		dst[2*n] = src[n] >> 4
	}
}
