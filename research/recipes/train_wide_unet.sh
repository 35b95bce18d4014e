#!/usr/bin/env bash
# A wider robust LV-Unet: channels 24-48-96-192 (2.9 M parameters, 2.2x the shipped one), the same
# robust recipe, split and seed as lvunet-robust, 5000 steps. Resumable: rerun the same command after an interruption.
# One torch thread: the other core stays free for other work.
set -euo pipefail
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_wide --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled --widths 24,48,96,192 \
  --config fast --epochs 20 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.002 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
