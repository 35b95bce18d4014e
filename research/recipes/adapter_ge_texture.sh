#!/usr/bin/env bash
# GE adapters trained long enough to change texture, not only grey levels (research until measured): the recipe of
# research/recipes/adapter_siemens_texture.sh (histogram matching first, the default segmenter's features in the
# loss and in the label-free criterion, seed 0) on the only GE images we have, the three Sunnybrook cines (every
# phase, no labels used), for 6000 iterations (learning-rate decay from 3000). Four runs: `adapter_ge_texture` on all
# three patients (the candidate to ship) and one without each patient (`adapter_ge_texture_without_<patient>`), so
# that each patient's Dice is measured with an adapter that never saw its images (scripts/choice_cv.py).
# On one CPU core a run is about 1.8 hours, so a run goes in session-sized parts: it stops after PART_MIN minutes
# (evaluating and saving) and rerunning resumes exactly from its checkpoint (four networks, optimisers, image
# pools, RNG). Outputs and checkpoints live in research/checkpoints/adapter_ge_texture/ so that a fresh checkout
# resumes: commit a run's folder after each part. One torch thread per run; two runs fit two cores.
# Then `distill`: once the run's file is registered in the research registry (as adapter-ge-texture, or
# adapter-ge-texture-without-<patient>), a small student (the shipped Siemens adapter's size, as
# scripts/recipes/distill_adapter_siemens.sh) distilled on the same images, the left-out patient's excluded too.
# Usage:  nohup setsid bash research/recipes/adapter_ge_texture.sh RUN [train|distill] > runs/RUN.log 2>&1 &
#         RUN: adapter_ge_texture | adapter_ge_texture_without_SCD0000101 | ..._SCD0000201 | ..._SCD0000301
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
RUN=${1:?usage: research/recipes/adapter_ge_texture.sh RUN [train|distill]}
case "$RUN" in
  adapter_ge_texture) EXCLUDE=() ;;
  adapter_ge_texture_without_SCD0000[123]01) EXCLUDE=(--target-exclude "${RUN#adapter_ge_texture_without_}") ;;
  *) echo "ERROR: unknown run $RUN" >&2; exit 2 ;;
esac
IMAGES=(--manifest ../shared/data/manifest.csv --source-split train_labelled --target-vendor GE --target-split dev_labelled
        "${EXCLUDE[@]}")
case "${2:-train}" in
  train)
    OUT=research/checkpoints/adapter_ge_texture/$RUN/$RUN.safetensors
    mkdir -p "$(dirname "$OUT")"
    RESUME=$([ -d "${OUT%.safetensors}_checkpoint" ] && echo --resume || true)
    .venv/bin/unetgan train-adapter "${IMAGES[@]}" --lvunet lvunet-sick-hearts --histogram-match \
      -o "$OUT" --iterations 6000 --seed 0 --time-limit-min "${PART_MIN:-100}" $RESUME ;;
  distill)
    STUDENT=${RUN/adapter_ge_texture/adapter_ge_texture_small}
    .venv/bin/unetgan distill-adapter --teacher "$(echo "$RUN" | tr _ -)" "${IMAGES[@]}" \
      -o "runs/adapter_ge_texture_small/$STUDENT.safetensors" --filters 8 --blocks 4 --edge-kernel 3 --steps 2000 --seed 0 ;;
  *) echo "ERROR: the stage is train or distill" >&2; exit 2 ;;
esac
