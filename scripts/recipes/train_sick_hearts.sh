#!/usr/bin/env bash
# The default segmenter (lvunet-sick-hearts): lvunet-soup2, the previous default, trained further on the Philips
# labels with emphasis on hearts unlike the average and on other acquisition protocols (docs/runs/sick_hearts/README.md):
#   - a quarter of each batch from labelled phantom dilated, hypertrophic and infarcted hearts (Philips profile,
#     slice thickness 5-10 mm, 8-20 slices, pixels 1.1-1.7 mm, the heart off centre), matched to the grey levels of
#     real training slices                                                        --phantom-fraction 0.25
#   - the training volumes with the thickest walls, the largest ED and the smallest ES cavities (a fifth each, by
#     their own labels) and slices with a tiny cavity drawn 3x as often            --sick-emphasis 2
#   - protocol augmentation: neighbour-slice blend (thick slices), zoom 0.75-1.6, coarse acquired pixels, heart
#     far from the crop's centre                         --partial-volume --zoom --low-resolution --off-centre
#   - the robust recipe of lvunet-soup2's first ingredient (GIN 0.3, Siemens histograms 0.3), peak lr 0.0003,
#     the same seed and the same 10 validation subjects as the whole lineage
# 24000 steps (48 epochs of 500): several CPU hours on one core, run in resumed parts. One torch thread.
# Checkpoints every 3 minutes in runs/sick_hearts (atomic; rerun this script to resume exactly: weights,
# optimiser, schedule and step; every batch is drawn from (seed, step)), and every 15 minutes a copy as
# safetensors in research/checkpoints/sick_hearts/ (commit it: a fresh checkout resumes from it).
# Usage:  nohup setsid bash scripts/recipes/train_sick_hearts.sh > runs/sick_hearts.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p runs
# A failed call (e.g. a file being edited in this checkout while training) loses at most 3 minutes: retry it.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if .venv/bin/unetgan train-unet --manifest ../shared/data/manifest.csv --vendor Philips \
  --split train_labelled -o runs/sick_hearts --method robust --gin 0.3 \
  --target-histograms 0.3 --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
  --phantom-fraction 0.25 --phantom-subjects 36 --sick-emphasis 2 \
  --partial-volume 0.3 --zoom 0.3 --zoom-range 0.75,1.6 --low-resolution 0.2 --off-centre 0.15 \
  --init-from research/models/lvunet_soup2.safetensors \
  --config fast --epochs 48 --steps-per-epoch 500 --batch 8 --crop 112 --lr 0.0003 --val-subjects 10 --seed 0 \
  --checkpoint-minutes 3 --export-dir research/checkpoints/sick_hearts --export-minutes 15 "$@"; then
    exit 0
  fi
  echo "train-unet failed (attempt $attempt); resuming from the last checkpoint in 60 s" >&2
  sleep 60
done
exit 1
