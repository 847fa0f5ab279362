// Package quant holds the number formats quantpack writes: IEEE half and
// bfloat16 conversion, bitsandbytes LLM.int8 rowwise INT8, ONNX Runtime
// MatMulNBits blockwise INT4, bitsandbytes NF4 with double quantization, nibble
// packing in both orders, and weight-error statistics. It is pure arithmetic:
// slices in, slices out, no files, no cgo, no model names. Every function
// writes into caller-owned destination slices and allocates nothing.
//
// # Sources
//
// Each scheme reproduces a published implementation, and the choices below were
// checked against that source, not against its documentation alone:
//
//   - FP16/BF16: IEEE 754-2008 binary16; bfloat16 as the upper half of a binary32
//     (https://en.wikipedia.org/wiki/Bfloat16_floating-point_format).
//     Round to nearest, ties to even. NaN stays NaN and is made quiet, keeping its
//     sign and the top bits of its payload (what x86 F16C VCVTPS2PH does).
//   - INT8: bitsandbytes int8_vectorwise_quant, "default" (PyTorch) kernel
//     (bitsandbytes/backends/default/ops.py):
//     SCB = max|row| in float32, q = round_half_even(x * float32(127/SCB)), all
//     in float32. The CUDA kernel (csrc int8 kInt8VectorQuant) uses
//     __fdividef(127, SCB), an approximate division, so its codes can differ
//     from these by one where x*scale sits within an ulp of a .5.
//   - INT4: ONNX Runtime com.microsoft.MatMulNBits
//     (https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md#com.microsoft.MatMulNBits)
//     as written by ORT's own quantizer (MlasQuantizeBlockwise, BlockwiseQuantizer
//     in onnxruntime/core/mlas/lib/q4_dq.cpp, called by
//     matmul_4bits_quantizer.py). See QuantizeInt4 for the exact arithmetic.
//   - NF4 and double quant: bitsandbytes quantize_4bit / quantize_blockwise, CUDA
//     kernel kQuantizeBlockwise with dQuantizeNF4 and dQuantize
//     (csrc/kernels.cu, later csrc/cuda/blockwise_quantization.cu), and
//     create_dynamic_map (bitsandbytes/functional.py). See QuantizeNF4,
//     DoubleQuant and DynamicMap.
//
// # Floating-point discipline
//
// The Go specification lets a compiler fuse x*y+z into one FMA (the amd64
// compiler does so at GOAMD64=v3). The schemes above round the product first,
// so every such expression here is written float32(x*y)+z: an explicit
// conversion forbids fusion, and the codes do not depend on GOAMD64.
//
// Where a reference computes in float32, this package computes in float32.
// The tests compare every code against a float64 reference written
// independently in the _test files; float64 carries 53 ≥ 2·24+2 bits, so a
// single float32 operation evaluated in float64 and rounded once to float32
// gives the same float32 (double rounding is innocuous), which is what makes a
// bit-for-bit comparison possible.
//
// # Non-finite input and extreme magnitudes
//
// FP16/BF16 keep NaN and ±Inf. The integer schemes (INT8, INT4, NF4, double
// quant) reject NaN and ±Inf with a *NonFiniteError naming the element index
// (fault.Invalid): a scale derived from them would be meaningless. Blocks whose
// absmax is so small that the float32 reciprocal used by the reference would
// overflow, or (NF4) so large that it would be subnormal, are quantized with
// the same float32 formula evaluated with an unbounded exponent range (the
// block is scaled by an exact power of two first); on every other block the
// codes are identical to the reference kernel's, and on those blocks the
// reference kernels would produce infinities or NaNs instead.
//
// # Assembly
//
// On amd64 with AVX2 (and F16C for half precision, FMA for the error
// statistics) the hot loops run in assembly; a pure-Go twin of each kernel is
// always compiled and the tests run both against each other on the same
// inputs. The twins give identical bits everywhere except the error
// statistics' sums, which add the same terms in a different order and may
// differ in the last bits (see ErrorAcc's determinism contract). The build tag
// purego turns the assembly off.
package quant
