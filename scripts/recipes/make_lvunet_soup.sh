#!/usr/bin/env bash
# lvunet-soup, the default segmenter before lvunet-soup2 (docs/models.md): the uniform weight
# average ("model soup") of three continuations of lvunet-robust, each trained with the same seed and split.
# In one pass it segments as lvunet-robust does with four flips on Philips and Siemens and better on GE, so
# the default test-time augmentation is none and a click runs the LV-Unet once per image instead of four times.
#   1. lvunet-robust trained further, 7000 steps                      runs/unet_robust2/last.safetensors
#   2. its weights averaged along 1250 steps at a constant rate       runs/unet_robust_averaged/average.safetensors
#   3. TTA distillation of lvunet-robust, no Siemens histograms       runs/unet_tta_distilled_generic/last.safetensors
#   4. TTA distillation of lvunet-robust, peak lr 0.0003              runs/unet_tta_distilled_gentle/last.safetensors
#   5. the mean of 2, 3 and 4                                          runs/lvunet_soup.safetensors
# 3.6 CPU hours on one core from lvunet-robust (4.9 with its own 1.35; run logs in docs/runs/). Every step
# is resumable and a finished one returns at once: rerun the same command after an interruption. Then
# `python scripts/recipes/register_lvunet_soup.py` (docs/models.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/recipes/train_robust_unet_continued.sh
scripts/recipes/train_robust_unet_averaged.sh --epochs 5
VARIANT=generic scripts/recipes/train_tta_distilled_unet.sh
VARIANT=gentle scripts/recipes/train_tta_distilled_unet.sh
.venv/bin/python scripts/recipes/soup_lvunet.py runs/unet_tta_distilled_generic/last.safetensors \
  runs/unet_tta_distilled_gentle/last.safetensors runs/unet_robust_averaged/average.safetensors \
  -o runs/lvunet_soup.safetensors
