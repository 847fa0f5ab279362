// Package convert holds quantpack's Hugging Face knowledge: config.json
// parsing, the architecture registry keyed by config.architectures[0] (one
// arch_<family>.go file per family), the precision policy that decides which
// tensor gets which scheme, and the conversion pipeline that streams a
// checkpoint through package quant into a Hugging Face-layout artifact.
//
// Layouts written (docs/design.md, "Precisions and artifact layouts"):
//   - fp16/bf16: every float tensor converted, config.json torch_dtype set;
//   - int8: bitsandbytes LLM.int8 keys P.weight (I8), P.SCB (F32), P.weight_format;
//   - int4: P.weight (U8, MatMulNBits [N, k_blocks, block/2], low nibble first),
//     P.weight_scale (F32 [N, k_blocks]) and P.weight_zero_point when asymmetric;
//   - nf4: bitsandbytes Params4bit keys P.weight, P.weight.absmax,
//     P.weight.quant_map, P.weight.nested_absmax, P.weight.nested_quant_map,
//     P.weight.quant_state.bitsandbytes__nf4.
//
// See https://huggingface.co/docs/transformers/main_classes/quantization and
// bitsandbytes' functional.py for the key names and quant_state JSON.
package convert
