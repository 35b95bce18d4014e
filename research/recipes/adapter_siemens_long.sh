#!/usr/bin/env bash
# The shipped Siemens recipe trained 6x longer: 3000 iterations against the default
# segmenter's features, the label-free criterion choosing the checkpoint. Research, not shipped (docs/models.md,
# 'adapter-siemens-long'). Resumable: rerun the same command after an interruption; registers the file when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=runs/adapter_siemens_long/adapter_siemens_long.safetensors
ARGS="Siemens lvunet-soup2 --time-limit-min 140"
COMMAND="OUT=$OUT ITERATIONS=3000 scripts/recipes/adapter_robust_runs.sh $ARGS"
# shellcheck disable=SC2086  # ARGS is split into words on purpose
env OUT="$OUT" ITERATIONS=3000 scripts/recipes/adapter_robust_runs.sh $ARGS
if grep -q '"name": "adapter-siemens-long"' research/models.json; then
  echo "adapter-siemens-long: registered"; exit 0
fi
cp "$OUT" research/models/  # research weights live beside the research registry
.venv/bin/unetgan register "research/models/$(basename "$OUT")" --in-place --registry research/models.json --name adapter-siemens-long --kind adapter --source-vendor Philips --target-vendor Siemens \
  --description "Longer training (research, not shipped): the shipped Siemens recipe for 3000 iterations against lvunet-soup2; the criterion chose iteration 1500" \
  --made-by "research/recipes/adapter_siemens_long.sh = $COMMAND (= OMP_NUM_THREADS=1 unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled --target-vendor Siemens --target-split train_unlabelled --lvunet lvunet-soup2 --histogram-match -o $OUT --iterations 3000 --seed 0 --time-limit-min 140)"
