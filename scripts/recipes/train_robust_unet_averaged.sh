#!/usr/bin/env bash
# lvunet-robust trained further (runs/unet_robust2/last.safetensors, SHA256 6d4f5d25...: scripts/recipes/
# train_robust_unet_continued.sh) with weight averaging: from its weights, 2500 more steps of the
# same recipe at a constant learning rate, the weights averaged every 25 steps (SWA/SWAD: training/weight_average.py). Averaging
# along a constant-rate trajectory finds a flatter minimum, which SWAD found to generalise better to unseen
# domains. Seed 0 as before: the seed also draws the 10 validation subjects, which must stay the ones the
# starting weights never saw. Resumable: rerun the same command after an interruption. The constant rate
# makes the first N epochs of a longer run those of `--epochs N`: lvunet-soup's ingredient is `--epochs 5`.
#
# VARIANT=soup: the same from lvunet-soup at lr 0.0003 -> runs/unet_soup_averaged, an ingredient of a
# second-generation soup (scripts/recipes/make_lvunet_soup2.sh): continuing lvunet-soup alone gains Philips and loses GE's
# myocardium (docs/models.md, "lvunet-context", the control); averaging is what gave lvunet-soup its GE robustness.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=runs/unet_robust_averaged; FROM=runs/unet_robust2/last.safetensors; LR=0.0005
case "${VARIANT:-}" in
  "") ;;
  soup) OUT=runs/unet_soup_averaged; FROM=research/models/lvunet_soup.safetensors; LR=0.0003 ;;
  *) echo "unknown VARIANT $VARIANT (soup)" >&2; exit 2 ;;
esac
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o "$OUT" --method robust --gin 0.3 --target-histograms 0.3 \
  --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --init-from "$FROM" \
  --schedule constant --lr "$LR" --average-every 25 \
  --config fast --epochs 10 --steps-per-epoch 250 --batch 8 --crop 112 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
