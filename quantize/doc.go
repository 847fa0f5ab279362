// Package quantize turns a float32 ONNX graph into a static W8A8 QDQ graph:
// int8 weights per output channel (symmetric) and activations quantized per
// tensor with scales fixed by calibration (asymmetric uint8 by default).
//
// The pass works on any decoded model (formats/onnx), not only on graphs
// quantpack wrote. It runs in three steps:
//
//  1. Plan (plan.go) decides, node by node, what is quantized: MatMul and
//     Gemm with a constant weight and Conv; LayerNormalization, Softmax,
//     GELU/Erf and the attention core stay float (see the reasons in
//     Manifest.Float) unless --include-ops widens the set.
//  2. Calibrate (calib.go, stats.go) runs the FP32 model in ONNX Runtime
//     (through verify.Runner) with the activation tensors added as graph
//     outputs, batch by batch, and keeps only running min/max and a
//     fixed-bin histogram per tensor: memory is O(tensors × bins).
//  3. Apply (apply.go) rewrites the graph: a QuantizeLinear per activation
//     tensor, a DequantizeLinear per consumer, and int8 weight initializers
//     with a per-channel DequantizeLinear, in the layout ONNX Runtime's CPU
//     provider fuses into MatMulIntegerToFloat / QLinearConv.
//
// Quantization arithmetic follows the ONNX operators
// (https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html,
// https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html): q =
// saturate(round_half_even(x / scale) + zero_point), x' = (q - zero_point)
// · scale. Range-to-scale rules are those of ONNX Runtime's quantization
// tools (the range always contains 0 so that 0 is exact; symmetric weights
// use [-127, 127]). The entropy method is the KL-divergence threshold
// search of TensorRT's calibrator (Migacz, "8-bit Inference with TensorRT",
// GTC 2017).
package quantize
