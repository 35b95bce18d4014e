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
# `register` puts what is finished in the research registry (a copy in research/models/, its SHA256 and command): the
# run's file (the label-free criterion's best iteration) once the run reached its last iteration, as
# adapter-ge-texture[-without-<patient>], and the student once distilled, as adapter-ge-texture-small[-without-...].
# Usage:  nohup setsid bash research/recipes/adapter_ge_texture.sh RUN [train|distill|register] > runs/RUN.log 2>&1 &
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
ITERATIONS=6000
OUT=research/checkpoints/adapter_ge_texture/$RUN/$RUN.safetensors
TRAIN=(train-adapter "${IMAGES[@]}" --lvunet lvunet-sick-hearts --histogram-match -o "$OUT" --iterations "$ITERATIONS" --seed 0)
STUDENT=runs/adapter_ge_texture_small/${RUN/adapter_ge_texture/adapter_ge_texture_small}.safetensors
DISTILL=(distill-adapter --teacher "$(echo "$RUN" | tr _ -)" "${IMAGES[@]}" -o "$STUDENT" --filters 8 --blocks 4 \
         --edge-kernel 3 --steps 2000 --seed 0)
register() {  # file description made-by
  local name; name=$(basename "$1" .safetensors | tr _ -)
  if grep -q "\"name\": \"$name\"" research/models.json; then echo "$name: registered"; return; fi
  cp "$1" research/models/  # research weights live beside the research registry
  .venv/bin/unetgan register "research/models/$(basename "$1")" --in-place --registry research/models.json --name "$name" \
    --kind adapter --source-vendor Philips --target-vendor GE --description "$2" --made-by "$3"
}
case "${2:-train}" in
  train)
    mkdir -p "$(dirname "$OUT")"
    RESUME=$([ -d "${OUT%.safetensors}_checkpoint" ] && echo --resume || true)
    .venv/bin/unetgan "${TRAIN[@]}" --time-limit-min "${PART_MIN:-100}" $RESUME
    # where the run stands, kept in the docs (the criterion per evaluation; the checkpoint may be deleted once done)
    .venv/bin/python research/analyses/adapter_checkpoints.py history "$OUT" --json "docs/runs/adapter_ge_texture/$RUN.history.json" ;;
  distill)  # its last line, the student's SHA256 and how much of the teacher's change it reproduces, kept in the docs
    .venv/bin/unetgan "${DISTILL[@]}" | tee /dev/stderr | tail -n 1 > "docs/runs/adapter_ge_texture/$(basename "$STUDENT" .safetensors).distill.json" ;;
  register)
    # the words before the colon are the role docs/models.md's table shows (scripts/models_table.py)
    TEACHER_ROLE="Texture training" STUDENT_ROLE="Distilled from $(echo "$RUN" | tr _ -)" HELD=""
    if [ ${#EXCLUDE[@]} -gt 0 ]; then
      TEACHER_ROLE="Held-out check, texture training" STUDENT_ROLE="Held-out check, distilled from $(echo "$RUN" | tr _ -)"
      HELD="; trained without ${EXCLUDE[1]}'s images, for scoring it only"
    fi
    # finished: its checkpoint, or once that is deleted (nothing resumes from it) the history kept in docs/runs/
    if grep -qs "\"iteration\": $ITERATIONS," "${OUT%.safetensors}_checkpoint/state.json" \
         "docs/runs/adapter_ge_texture/$RUN.history.json"; then
      register "$OUT" "$TEACHER_ROLE (research): GE -> Philips, histogram matching, then a generator trained $ITERATIONS iterations to change texture too$HELD" \
        "research/recipes/adapter_ge_texture.sh $RUN (= OMP_NUM_THREADS=1 unetgan ${TRAIN[*]}, in parts of --time-limit-min with --resume; the label-free criterion's best iteration)"
    else echo "$RUN: its run has not reached iteration $ITERATIONS"; fi
    if [ -f "$STUDENT" ]; then
      register "$STUDENT" "$STUDENT_ROLE (research): GE -> Philips, the small student (8 filters, 4 blocks)$HELD" \
        "research/recipes/adapter_ge_texture.sh $RUN distill (= OMP_NUM_THREADS=1 unetgan ${DISTILL[*]})"
    else echo "$STUDENT: not distilled yet"; fi ;;
  *) echo "ERROR: the stage is train, distill or register" >&2; exit 2 ;;
esac
