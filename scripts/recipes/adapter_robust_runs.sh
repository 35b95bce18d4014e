#!/usr/bin/env bash
# Adapters trained against the robust LV-Unet: the shipped recipe (histogram matching first, the
# LV-Unet's features in the loss and in the label-free checkpoint criterion). Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENDOR=${1:?usage: scripts/recipes/adapter_robust_runs.sh Siemens|GE [LVUNET]}
LVUNET=${2:-lvunet-robust}
case "$VENDOR" in
  Siemens) SPLIT=train_unlabelled ;;
  GE) SPLIT=dev_labelled ;;  # the 3 GE patients' images (never their contours)
  *) echo "unknown vendor $VENDOR" >&2; exit 2 ;;
esac
NAME=$(echo "$VENDOR" | tr '[:upper:]' '[:lower:]')
OUT=${OUT:-"runs/adapter_${NAME}_robust/adapter_${NAME}_robust.safetensors"}  # OUT=... for a second run beside it
RESUME=$([ -d "${OUT%.safetensors}_checkpoint" ] && echo --resume || true)
OMP_NUM_THREADS=1 .venv/bin/unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled \
  --target-vendor "$VENDOR" --target-split "$SPLIT" --lvunet "$LVUNET" --histogram-match \
  -o "$OUT" --iterations "${ITERATIONS:-1000}" --seed 0 $RESUME "${@:3}"
