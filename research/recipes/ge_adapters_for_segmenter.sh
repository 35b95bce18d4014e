#!/usr/bin/env bash
# The four GE adapters (the shipped one and the three leave-one-patient-out ones that docs/results.md's
# held-out GE column needs) trained against another LV-Unet with the shipped recipe of
# scripts/recipes/adapter_robust_runs.sh (histogram matching first, the LV-Unet's features in the loss and in the
# label-free checkpoint criterion, 500 iterations, seed 0). An adapter is tied to the LV-Unet whose features
# guided it, so a new default segmenter needs its own GE adapters.
# Usage: research/recipes/ge_adapters_for_segmenter.sh LVUNET   (a registry name or a .safetensors file).
# Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
LVUNET=${1:?usage: research/recipes/ge_adapters_for_segmenter.sh LVUNET}
ITERATIONS=${ITERATIONS:-500}
DIR="runs/ge_adapters_$(echo "${LVUNET%.safetensors}" | tr '/.' '__')"
mkdir -p "$DIR"
train() {  # name extra-args...
  local name=$1; shift
  local out="$DIR/${name}/${name}.safetensors"
  # the adapter file is written at every evaluation: only this marker says the run reached its last iteration
  [ -f "$out.done" ] && { echo "$name: done"; return; }
  local resume=$([ -d "${out%.safetensors}_checkpoint" ] && echo --resume || true)
  OMP_NUM_THREADS=1 .venv/bin/unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled \
    --target-vendor GE --target-split dev_labelled --lvunet "$LVUNET" --histogram-match \
    -o "$out" --iterations "$ITERATIONS" --seed 0 $resume "$@" > "$DIR/${name}.log" 2>&1
  local summary=$(tail -n 1 "$DIR/${name}.log")
  echo "$summary"
  case "$summary" in *"\"iterations\": $ITERATIONS,"*) touch "$out.done" ;; esac
}
train adapter_ge
for patient in SCD0000101 SCD0000201 SCD0000301; do
  train "adapter_ge_without_${patient}" --target-exclude "$patient"
done
