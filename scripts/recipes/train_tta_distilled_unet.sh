#!/usr/bin/env bash
# TTA distillation: lvunet-robust learns, in one pass, what it gives averaged over the four
# flips (--tta flip4, 4x its time, two thirds of a click), besides the labels: from its own weights, the same
# recipe, split and seed (the seed also draws the 10 validation subjects, which must stay the ones it never
# saw). Variants (docs/models.md), chosen by VARIANT=:
#   (unset)  the robust recipe, peak lr 0.001                       -> runs/unet_tta_distilled
#   generic  no Siemens target histograms (MRI artefacts and GIN)   -> runs/unet_tta_distilled_generic
#   gentle   peak lr 0.0003, staying nearer lvunet-robust           -> runs/unet_tta_distilled_gentle
#   soup     generic, from and towards the half-and-half soup of lvunet-robust and its averaged continuation
#            -> runs/unet_tta_distilled_soup
#            (runs/candidates/soup50.safetensors: scripts/recipes/soup_lvunet.py
#            runs/candidates/average_e5.safetensors UnetGANSlicer/Resources/Models/lvunet_robust.safetensors -o ...)
#   second   generic, lr 0.0003, from and towards lvunet-soup (flip4 on it: Philips 0.896) -> runs/unet_tta_distilled_second
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
HISTOGRAMS=(--target-histograms 0.3 --histogram-target-vendor Siemens --histogram-target-split train_unlabelled)
LR=0.001
TEACHER=UnetGANSlicer/Resources/Models/lvunet_robust.safetensors
case "${VARIANT:-}" in
  "") OUT=runs/unet_tta_distilled ;;
  generic) OUT=runs/unet_tta_distilled_generic; HISTOGRAMS=() ;;
  gentle) OUT=runs/unet_tta_distilled_gentle; LR=0.0003 ;;
  soup) OUT=runs/unet_tta_distilled_soup; HISTOGRAMS=(); TEACHER=runs/candidates/soup50.safetensors ;;
  second) OUT=runs/unet_tta_distilled_second; HISTOGRAMS=(); LR=0.0003
          TEACHER=research/models/lvunet_soup.safetensors ;;
  *) echo "unknown VARIANT $VARIANT (generic, gentle, soup or second)" >&2; exit 2 ;;
esac
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o "$OUT" --method robust --gin 0.3 "${HISTOGRAMS[@]}" \
  --init-from "$TEACHER" --distill-from "$TEACHER" --distill-weight 10 \
  --config fast --epochs 8 --steps-per-epoch 250 --batch 8 --crop 112 --lr "$LR" --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
