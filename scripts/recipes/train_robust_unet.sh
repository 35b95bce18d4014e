#!/usr/bin/env bash
# The robust LV-Unet: resumable; rerun the same command to continue after an interruption.
# One torch thread: the other core stays free for other work (two threads with another process on the
# box measured 7x slower per step).
set -euo pipefail
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_robust --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --config fast --epochs 24 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.002 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
