#!/usr/bin/env bash
# TTA distillation (issues #12 and #17): lvunet-robust learns, in one pass, what it gives averaged over the four
# flips (--tta flip4, 4x its time, two thirds of a click), besides the labels: from its own weights, the same
# recipe, split and seed (the seed also draws the 10 validation subjects, which must stay the ones it never
# saw). If the one-pass student matches the four-flip teacher on the dev data, a click needs a quarter of the
# segmenter's time. Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_tta_distilled --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --init-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors \
  --distill-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors --distill-weight 10 \
  --config fast --epochs 8 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.001 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
