#!/usr/bin/env bash
# Paper-scale training on a GPU (issue #12, item 1): one script, each call under 10 minutes, every result in
# one folder. Rerun the same command to continue: both trainings resume exactly from their checkpoints.
#
#   scripts/gpu_paper_run.sh OUT_DIR [MINUTES_PER_CALL]
#
# OUT_DIR/unet: the robust recipe at the paper's scale (widths 32-256, whole 192 x 192 slices);
# OUT_DIR/adapter_siemens.safetensors: the paper's Unet-GAN settings (64-filter 9-block generators) against it.
# Needs ../shared/data beside the repository. Nothing in the product or the tests depends on this script.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/gpu_paper_run.sh OUT_DIR [MINUTES_PER_CALL]}
MINUTES=${2:-8}
MANIFEST=../shared/data/manifest.csv
mkdir -p "$OUT"
if [ ! -f "$OUT/unet/done" ]; then
  .venv/bin/unetgan train-unet --manifest "$MANIFEST" --vendor Philips --split train_labelled -o "$OUT/unet" \
    --config paper --method robust --gin 0.3 --target-histograms 0.3 \
    --histogram-target-vendor Siemens --histogram-target-split train_unlabelled \
    --val-subjects 10 --seed 0 --device cuda --time-limit-min "$MINUTES" 2>&1 | tee -a "$OUT/unet.log"
  # the run is complete when its last epoch is in the history
  .venv/bin/python - "$OUT/unet" <<'PY' && touch "$OUT/unet/done"
import json, sys
from pathlib import Path
from unetgan.training.train_unet import UnetTrainConfig
history = json.loads((Path(sys.argv[1]) / "history.json").read_text())
raise SystemExit(0 if history and history[-1]["epoch"] >= UnetTrainConfig.paper().epochs else 1)
PY
  exit 0
fi
.venv/bin/unetgan train-adapter --manifest "$MANIFEST" --source-split train_labelled --target-vendor Siemens \
  --target-split train_unlabelled --lvunet "$OUT/unet/best.safetensors" --histogram-match --config paper \
  --device cuda --resume --time-limit-min "$MINUTES" -o "$OUT/adapter_siemens.safetensors" 2>&1 | tee -a "$OUT/adapter.log"
