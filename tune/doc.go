// Package tune measures where quantization costs accuracy and acts on it:
// per-layer sensitivity (each quantizable layer quantized alone, or all but
// one, compared with FP32 on the same inputs: KL divergence, cosine, top-1
// agreement, labelled top-1) and the --precision auto search (a precision
// per layer, smallest first, promoted in order of sensitivity until a top-1
// or cosine target holds, the best state always written).
//
// Variant graphs are built in memory by convert.Variants and run through an
// Opener (ONNX Runtime sessions in the command line); a variant that
// changes one layer starts from the stored FP32 activation at the last
// graph bottleneck before it. The design and measurements are in
// docs/sensitivity.md.
package tune
