#!/usr/bin/env bash
# lvunet-soup2, the default segmenter (docs/models.md): the uniform weight average
# ("model soup") of two continuations of lvunet-soup on the Philips labels, same seed and split (2000 steps each,
# robust recipe, peak lr 0.0003), which differ in one thing:
#   1. with histogram matching toward the Siemens training volumes     runs/unet_context_control/last.safetensors
#      (CONTEXT=0 scripts/recipes/train_context_unet.sh, the control run)
#   2. without it (GIN and MRI artefacts only)                          runs/unet_soup_generic/last.safetensors
#      (VARIANT=generic scripts/recipes/train_soup_continuation.sh)
#   3. the mean of 1 and 2                                              runs/lvunet_soup2.safetensors
# 0.9 CPU hours on one core from lvunet-soup. Every step is resumable and a finished one returns at once: rerun
# the same command after an interruption. Then `python scripts/recipes/register_lvunet_soup2.py` (docs/models.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
CONTEXT=0 scripts/recipes/train_context_unet.sh
VARIANT=generic scripts/recipes/train_soup_continuation.sh
.venv/bin/python scripts/recipes/soup_lvunet.py runs/unet_context_control/last.safetensors \
  runs/unet_soup_generic/last.safetensors -o runs/lvunet_soup2.safetensors
