#!/usr/bin/env bash
# Self-training round: the robust LV-Unet labels the unlabelled Siemens training volumes
# (histogram-matched to Philips, flip-averaged), the plausible labels are kept (unetgan pseudo-label), and the
# network is fine-tuned on them mixed half and half with the Philips labels. Resumable: rerun to continue.
# GE images are never used: GE stays a vendor the segmenter has not seen.
set -euo pipefail
cd "$(dirname "$0")/../.."
START=${1:-runs/unet_robust/best.safetensors}
if [ ! -f runs/pseudo_siemens/manifest.csv ]; then
  OMP_NUM_THREADS=1 .venv/bin/unetgan pseudo-label --manifest ../shared/data/manifest.csv --vendor Siemens \
    --split train_unlabelled --model "$START" --histogram-match -o runs/pseudo_siemens
fi
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/unet_selftrain --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --pseudo-manifest runs/pseudo_siemens/manifest.csv --pseudo-fraction 0.5 --init-from "$START" \
  --config fast --epochs 4 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.0005 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "${@:2}"
