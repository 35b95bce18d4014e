#!/usr/bin/env bash
# TTA distillation without the Siemens histograms (issue #12): scripts/train_tta_distilled_unet.sh gained on
# Philips and Siemens and lost on GE, as every continuation of lvunet-robust with Siemens-looking crops did.
# The same run with generic appearance augmentation only (the robust recipe's MRI artefacts and GIN, no
# target-vendor histograms) tests whether what the continuation sees, not its length, costs GE.
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_tta_distilled_generic --method robust --gin 0.3 \
  --init-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors \
  --distill-from UnetGANSlicer/Resources/Models/lvunet_robust.safetensors --distill-weight 10 \
  --config fast --epochs 8 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.001 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
