// Package convert holds quantpack's Hugging Face knowledge: config.json
// parsing, the architecture registry keyed by config.architectures[0] (one
// arch_<family>.go file per family, listed in registry.go's families table,
// whose comment says what to touch to add one), the precision policy that decides which
// tensor gets which scheme, and the conversion pipeline that streams a
// checkpoint through package quant into a Hugging Face-layout artifact.
//
// Layouts written (docs/design.md, "Precisions and artifact layouts"):
//   - fp16/bf16: every float tensor converted, config.json torch_dtype set;
//   - int8: bitsandbytes' LLM.int8 keys;
//   - int4: com.microsoft MatMulNBits' layout (codes, scales, zero points when asymmetric);
//   - nf4: bitsandbytes' Params4bit keys.
//
// Every layout's tensor names, dtypes and shapes are one table, layouts in
// layout.go, which the writer, export, dequantize and inspect all read.
//
// See https://huggingface.co/docs/transformers/main_classes/quantization and
// bitsandbytes' functional.py for the key names and quant_state JSON.
package convert
