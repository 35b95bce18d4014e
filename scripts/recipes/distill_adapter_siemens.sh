#!/usr/bin/env bash
# The small Siemens adapter: a student generator (8 filters, 4 residual blocks, 3 x 3 first and last
# convolutions) trained to reproduce adapter-siemens' translations on the images that adapter was trained on.
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 .venv/bin/unetgan distill-adapter --teacher adapter-siemens --manifest ../shared/data/manifest.csv \
  --source-split train_labelled --target-vendor Siemens --target-split train_unlabelled \
  -o runs/adapter_siemens_small3/adapter_siemens_small.safetensors --filters 8 --blocks 4 --edge-kernel 3 \
  --steps 2000 --seed 0 "$@"
