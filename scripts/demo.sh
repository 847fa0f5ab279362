#!/usr/bin/env bash
# demo.sh BIN OUTDIR: the main job on a built-in default, end to end.
# Synthesizes DeiT-Tiny (random weights, the real config), converts it to every
# precision with a size and error table, exports FP32 and INT8 graphs and runs
# each once, then runs the study: export every
# precision to ONNX and verify each against FP32 in ONNX Runtime on this CPU.
set -euo pipefail
bin=${1:-bin/quantpack}
out=${2:-demo-out}
preset=deit-tiny-patch16-224
rm -rf "$out"
mkdir -p "$out"

echo "== synth: $preset (random weights, real config)"
"$bin" synth --preset "$preset" -o "$out/deit-tiny"

echo
echo "== convert: every precision"
for p in fp16 bf16 int8 int4 nf4; do
	# The summary, then the worst-tensors table: its header and three rows.
	"$bin" convert "$out/deit-tiny" -o "$out/convert-$p" --precision "$p" | sed -n '1,6p'
	echo
done

echo
echo "== inspect: the NF4 artifact (bitsandbytes layout)"
"$bin" inspect "$out/convert-nf4" | sed -n 1,5p

echo
echo "== export: fp32 and int8 (dynamic) ONNX graphs, one inference each in ONNX Runtime (--check)"
"$bin" export "$out/deit-tiny" -o "$out/onnx-fp32" --precision fp32 --check
"$bin" export "$out/deit-tiny" -o "$out/onnx-int8" --precision int8 --int8-mode dynamic --check

echo
echo "== study: export every precision and verify it against FP32 on ONNX Runtime (CPU)"
"$bin" study "$out/deit-tiny" -o "$out/study" --batch 1,8 --warmup 2 --iters 10 --samples 32
