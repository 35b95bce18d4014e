#!/usr/bin/env bash
# TTA distillation, gently (issue #12): scripts/train_tta_distilled_unet.sh (peak lr 0.001) gained on Philips
# and Siemens and lost on GE; halfway between two robust-lineage networks GE had been better than at either end
# (docs/models.md, soups). The same run at a peak learning rate of 0.0003 stays nearer lvunet-robust.
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_tta_distilled_gentle --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --init-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors \
  --distill-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors --distill-weight 10 \
  --config fast --epochs 8 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.0003 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
