#!/usr/bin/env bash
# study16.sh WORKDIR [extra study flags]: the seed study's 16 models, synthesized
# (random weights, real configs), studied at every precision on this machine's
# CPU. Produces WORKDIR/report/{report.md,report.csv,report.json,heatmap*.png}.
# The big models take most of the time; ITERS/WARMUP/BATCH tune the cost.
set -euo pipefail
work=${1:?usage: study16.sh WORKDIR}
shift || true
bin=${BIN:-bin/quantpack}
iters=${ITERS:-5}
warmup=${WARMUP:-1}
batch=${BATCH:-1,8}
presets=(mobilevit-xx-small mobilevit-small deit-tiny-patch16-224 deit-small-distilled-patch16-224 dino-vits16
	vit-base-patch32-224 vit-base-patch16-224 deit-base-distilled-patch16-224 dino-vitb16 dinov2-base
	beit-base-patch16-224 vit-base-patch16-384 vit-large-patch16-224 dinov2-large beit-large-patch16-224
	vit-huge-patch14-224)
mkdir -p "$work/models"
srcs=()
for p in "${presets[@]}"; do
	[ -d "$work/models/$p" ] || "$bin" synth --preset "$p" -o "$work/models/$p"
	srcs+=("$work/models/$p")
done
"$bin" study "${srcs[@]}" -o "$work/report" --batch "$batch" --iters "$iters" --warmup "$warmup" --samples 8 "$@"
