#!/usr/bin/env bash
# lvunet-robust, trained further: its loss was still falling at step 6000, so a second one-cycle
# schedule (peak lr 0.001, half the first run's) of 7000 steps starts from the shipped weights. Seed 0 as
# before: the seed also draws the 10 validation subjects, which must stay the ones lvunet-robust never saw.
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_robust2 --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --init-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors \
  --config fast --epochs 28 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.001 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
