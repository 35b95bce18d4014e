#!/usr/bin/env bash
# A Siemens adapter trained long enough to change texture, not only grey levels (research; its iteration 4794 is
# the teacher of the shipped adapter-siemens-texture-small): the
# shipped recipe (histogram matching first, the default segmenter's features in the loss and in the label-free
# criterion) for 12000 iterations, 4x adapter-siemens-long, whose translations the vendor classifiers took for
# Philips more often than any shorter run's (docs/vendor_check.md). On one CPU core that is about 10 hours, so it
# runs in session-sized parts: each part stops after PART_MIN minutes (evaluating and saving), and rerunning this
# script resumes exactly from the checkpoint (four networks, optimisers, image pools, RNG; refreshed at every
# evaluation, every 200 iterations). The output and its checkpoint live in research/checkpoints/ so that a fresh
# checkout resumes: commit that folder after each part. One torch thread.
# Usage:  nohup setsid bash research/recipes/adapter_siemens_texture.sh > runs/adapter_siemens_texture.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
OUT=research/checkpoints/adapter_siemens_texture/adapter_siemens_texture.safetensors
mkdir -p "$(dirname "$OUT")" runs
RESUME=$([ -d "${OUT%.safetensors}_checkpoint" ] && echo --resume || true)
.venv/bin/unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled \
  --target-vendor Siemens --target-split train_unlabelled --lvunet lvunet-sick-hearts --histogram-match \
  -o "$OUT" --iterations 12000 --seed 0 --time-limit-min "${PART_MIN:-100}" $RESUME
