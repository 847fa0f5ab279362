#!/usr/bin/env bash
# awq_table.sh: the int4 table of docs/accuracy.md ("awq"): for each trained
# fixture, rtn block 32, rtn/hqq block 128, awq block 128 (convert artifact:
# LayerNorm/value folds only; export: + explicit Mul), each exported and run
# by `verify --images` against the FP32 export; the activation-weighted SQNR
# comes from awq runs over each base method (their base_weighted_sqnr_db is
# the base method's own, alpha = 0). CPU seconds (user+sys) of each convert.
# Usage: scripts/awq_table.sh OUTDIR   (bin/quantpack built; ORT present)
#        scripts/awq_table.sh cpu OUTDIR [VITB]: CPU seconds (user sys) of
#        rtn / hqq / awq full grid / awq fast search, int4 block 128, one
#        thread, each in its own process of the convert test binary
#        (BenchmarkAWQConvert: the full grid has no command-line switch);
#        vit-28 and mobilevit-dev on 128 calibration images, VITB (e.g.
#        `quantpack synth --preset vit-base-patch16-224 -o vitb`) on 16.
set -euo pipefail
Q=${Q:-$(pwd)/bin/quantpack}
F=${F:-$(cd ../shared/fixtures/trained && pwd)}
cpu() { /usr/bin/time -f '%U %S' -o "$1" "${@:2}" >/dev/null; }
if [ "${1:-}" = cpu ]; then
  O=${2:?OUTDIR}; mkdir -p "$O"
  go test -c -o "$O/convert.test" ./convert
  models=("$F/vit-28:128" "$F/mobilevit-dev:128")
  [ -n "${3:-}" ] && models+=("$(cd "$3" && pwd):16")
  for ms in "${models[@]}"; do
    m=${ms%:*} n=${ms##*:}
    for mode in rtn hqq awq-full awq-fast; do
      (cd convert && QUANTPACK_AWQ_BENCH_MODEL=$m QUANTPACK_AWQ_BENCH_SAMPLES=$n \
        /usr/bin/time -f '%U %S' -o "$O/t-$(basename "$m")-$mode" \
        "$O/convert.test" -test.run '^$' -test.bench "BenchmarkAWQConvert/$mode\$" -test.benchtime 1x) \
        | grep Benchmark | tee -a "$O/bench.txt"
      echo "$(basename "$m") $mode $(cat "$O/t-$(basename "$m")-$mode")" | tee -a "$O/cpu.txt"
    done
  done
  exit 0
fi
O=${1:?OUTDIR}
mkdir -p "$O"
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
