#!/usr/bin/env bash
# awq_table.sh: the int4 table of docs/accuracy.md ("awq"): for each trained
# fixture, rtn block 32, rtn/hqq block 128, awq block 128 (convert artifact:
# LayerNorm/value folds only; export: + explicit Mul), each exported and run
# by `verify --images` against the FP32 export; the activation-weighted SQNR
# comes from awq runs over each base method (their base_weighted_sqnr_db is
# the base method's own, alpha = 0). CPU seconds (user+sys) of each convert.
# Usage: scripts/awq_table.sh OUTDIR   (bin/quantpack built; ORT present)
set -euo pipefail
Q=${Q:-$(pwd)/bin/quantpack}
F=${F:-$(cd ../shared/fixtures/trained && pwd)}
O=${1:?OUTDIR}
mkdir -p "$O"
cpu() { /usr/bin/time -f '%U %S' -o "$1" "${@:2}" >/dev/null; }
for model in vit-28 mobilevit-dev; do
  d=$O/$model; mkdir -p "$d"
  $Q export "$F/$model" -o "$d/e32" --precision fp32 >/dev/null
  cal=(--calib-images "$F/calib" --calib-samples 128)
  cpu "$d/t-rtn32" $Q convert "$F/$model" -o "$d/rtn32" --precision int4 --method rtn --block-size 32 --threads 1
  cpu "$d/t-rtn128" $Q convert "$F/$model" -o "$d/rtn128" --precision int4 --method rtn --block-size 128 --threads 1
  cpu "$d/t-hqq128" $Q convert "$F/$model" -o "$d/hqq128" --precision int4 --method hqq --block-size 128 --threads 1
  cpu "$d/t-awq128" $Q convert "$F/$model" -o "$d/awq128" --precision int4 --method awq --block-size 128 --threads 1 "${cal[@]}"
  # weighted SQNR of the bases (alpha = 0 records of awq over each base)
  $Q convert "$F/$model" -o "$d/w-rtn32" --precision int4 --method awq --awq-base rtn --block-size 32 "${cal[@]}" >/dev/null
  $Q convert "$F/$model" -o "$d/w-rtn128" --precision int4 --method awq --awq-base rtn --block-size 128 "${cal[@]}" >/dev/null
  for v in rtn32 rtn128 hqq128 awq128; do $Q export "$d/$v" -o "$d/e-$v" >/dev/null; done
  $Q export "$F/$model" -o "$d/e-awq128mul" --precision int4 --method awq --block-size 128 "${cal[@]}" >/dev/null
  for v in rtn32 rtn128 hqq128 awq128 awq128mul; do
    $Q verify "$d/e32" "$d/e-$v" --images "$F/images" --no-memory --warmup 0 --iters 1 --json > "$d/v-$v.json" || true
  done
done
echo done
