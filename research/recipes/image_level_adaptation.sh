#!/usr/bin/env bash
# Image-level adaptation of the training data (CyCADA, Hoffman et al. 2018): does the cycle's other generator
# (G_T: Philips -> Siemens look) give the LV-Unet something histogram matching does not? (docs/models.md,
# 'Image-level adaptation'.)
#   1. a Siemens adapter against lvunet-soup2 (the shipped recipe, 500 iterations); its checkpoint keeps G_T
#   2. G_T out of that checkpoint
#   3. lvunet-soup2 fine-tuned twice, identically (robust recipe, 1000 steps, peak lr 0.0003, the lineage's seed and
#      validation subjects) but for one thing: 30 % of the Philips samples shown through G_T (translated), or
#      none (control). The difference between the two is the translation's share.
# About 0.7 CPU hours on one core. Usage: bash research/recipes/image_level_adaptation.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
out=runs/image_level
mkdir -p "$out"
resume=(); [ -d "$out/adapter_siemens_checkpoint" ] && resume=(--resume)
.venv/bin/unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled \
  --target-vendor Siemens --target-split train_unlabelled --lvunet lvunet-soup2 --histogram-match \
  -o "$out/adapter_siemens.safetensors" --iterations 500 --seed 0 "${resume[@]}"
.venv/bin/python research/recipes/target_generator.py "$out/adapter_siemens_checkpoint" -o "$out/g_t_siemens.safetensors"
for variant in translated control; do
  extra=()
  [ "$variant" = translated ] && extra=(--translated-source 0.3 --source-translator "$out/g_t_siemens.safetensors")
  .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips --split train_labelled \
    -o "$out/unet_$variant" --method robust --gin 0.3 --target-histograms 0.3 \
    --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
    --init-from research/models/lvunet_soup2.safetensors \
    --config fast --epochs 2 --steps-per-epoch 500 --batch 8 --crop 112 --lr 0.0003 --val-subjects 10 --seed 0 \
    --checkpoint-minutes 3 "${extra[@]}"
done
