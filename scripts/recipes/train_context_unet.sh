#!/usr/bin/env bash
# Through-plane context: lvunet-soup widened to see the slice on either side as two more
# input channels (at zero, so it starts as lvunet-soup), fine-tuned with the robust recipe at a low learning rate.
# Why: on the Philips validation subjects the largest blood-pool error is whole basal slices the experts leave
# out, which one slice alone does not tell apart (docs/models.md, "End-slice clean-up"). Same split and seed as
# the soup's lineage (the seed draws the 10 validation subjects it never saw).
# CONTEXT=0 is the control: the same fine-tuning without the neighbours (runs/unet_context_control), to tell
# what the context adds from what more training adds.
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONTEXT=${CONTEXT:-1}
OUT=runs/unet_context
if [ "$CONTEXT" = 0 ]; then OUT=runs/unet_context_control; fi
# VARIANT=distilled: also taught lvunet-soup's four-flip output (widened, it answers from the centre slice), to
# keep the soup's in-plane masks (and with them GE's myocardium) while the labels teach the end slices; 1000 steps
EXTRA=(--epochs 8)
if [ "${VARIANT:-}" = distilled ]; then
  OUT=runs/unet_context_distilled
  EXTRA=(--epochs 4 --distill-from research/models/lvunet_soup.safetensors --distill-weight 1)
fi
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o "$OUT" --method robust --gin 0.3 \
  --target-histograms 0.3 --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --init-from research/models/lvunet_soup.safetensors --context-slices "$CONTEXT" \
  --config fast "${EXTRA[@]}" --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.0003 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
