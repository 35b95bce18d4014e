#!/usr/bin/env bash
# Ingredients of a second-generation soup (scripts/recipes/make_lvunet_soup2.sh): lvunet-soup
# trained further on the labels with the robust recipe at peak lr 0.0003, 2000 steps, as the control
# (`CONTEXT=0 scripts/recipes/train_context_unet.sh`, runs/unet_context_control), each with another appearance mix so
# that the continuations differ. One continuation alone gains Philips (0.899) and loses GE's myocardium (0.745);
# the bet is that their average keeps the gain and, as lvunet-soup's own ingredients did, gets the robustness
# back. Same split and seed as the soup's lineage (the seed draws the 10 validation subjects it never saw).
#   VARIANT=generic  no Siemens target histograms (GIN and MRI artefacts only) -> runs/unet_soup_generic
#   VARIANT=gin      GIN on half of the images instead of 0.3                    -> runs/unet_soup_gin
#   VARIANT=generic-context  generic, seeing the slice on either side (--context-slices 1) -> runs/unet_soup_generic_context
#   VARIANT=generic2 generic for 2000 more steps, from runs/unet_soup_generic    -> runs/unet_soup_generic2
#   VARIANT=rematch  GIN on half, and half of all samples mapped back onto their own histogram after every
#                    appearance change (--rematch 0.5), as inference maps GE and Siemens onto the Philips
#                    histogram: the continuation lost GE's myocardium on histogram-matched GE images only
#                    (without any matching lvunet-soup and it score the same)    -> runs/unet_soup_rematch
# Resumable: rerun the same command after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
HISTOGRAMS=(--target-histograms 0.3 --histogram-target-vendor Siemens --histogram-target-split train_unlabelled)
GIN=0.3
REMATCH=()
CONTEXT=()
FROM=research/models/lvunet_soup.safetensors
case "${VARIANT:-}" in
  generic) OUT=runs/unet_soup_generic; HISTOGRAMS=() ;;
  gin) OUT=runs/unet_soup_gin; GIN=0.5 ;;
  rematch) OUT=runs/unet_soup_rematch; GIN=0.5; REMATCH=(--rematch 0.5) ;;
  generic-context) OUT=runs/unet_soup_generic_context; HISTOGRAMS=(); CONTEXT=(--context-slices 1) ;;
  generic2) OUT=runs/unet_soup_generic2; HISTOGRAMS=(); FROM=runs/unet_soup_generic/last.safetensors ;;
  *) echo "VARIANT must be generic, generic-context, generic2, gin or rematch" >&2; exit 2 ;;
esac
OMP_NUM_THREADS=1 .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o "$OUT" --method robust --gin "$GIN" "${HISTOGRAMS[@]}" "${REMATCH[@]}" "${CONTEXT[@]}" \
  --init-from "$FROM" \
  --config fast --epochs 8 --steps-per-epoch 250 --batch 8 --crop 112 --lr 0.0003 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 "$@"
