#!/usr/bin/env bash
# A small Siemens adapter: a student generator (8 filters, 4 residual blocks, 3 x 3 first and last
# convolutions) trained to reproduce a teacher adapter's translations on the images that teacher was trained on.
#   TEACHER=adapter-siemens-texture OUT=runs/adapter_siemens_texture_small/adapter_siemens_texture_small.safetensors \
#     scripts/recipes/distill_adapter_siemens.sh      # the shipped adapter-siemens-texture-small
#   scripts/recipes/distill_adapter_siemens.sh        # the earlier adapter-siemens-small (research registry)
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 .venv/bin/unetgan distill-adapter --teacher "${TEACHER:-adapter-siemens}" \
  --manifest ../shared/data/manifest.csv \
  --source-split train_labelled --target-vendor Siemens --target-split train_unlabelled \
  -o "${OUT:-runs/adapter_siemens_small3/adapter_siemens_small.safetensors}" --filters 8 --blocks 4 --edge-kernel 3 \
  --steps 2000 --seed 0 "$@"
