#!/usr/bin/env bash
# Register the finished adapters of research/recipes/adapter_ablation_runs.sh in the research registry (SHA256 and the
# exact command), so that `make results` makes their columns. Adapters already registered are left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
COMMON="OMP_NUM_THREADS=1 unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled --lvunet lvunet-robust --histogram-match --iterations 500 --seed 0"
register() {  # run-name registry-name vendor split extra-args description
  local run=$1 name=$2 vendor=$3 split=$4 extra=$5 description=$6
  local file="runs/ablations/${run}/${run}.safetensors"
  [ -f "$file.done" ] || { echo "$name: its run has not reached its last iteration ($file.done)"; return; }
  if grep -q "\"name\": \"$name\"" research/models.json; then echo "$name: registered"; return; fi
  cp "$file" research/models/  # research weights live beside the research registry
  .venv/bin/unetgan register "research/models/$(basename "$file")" --in-place --registry research/models.json --name "$name" --kind adapter --source-vendor Philips --target-vendor "$vendor" \
    --description "$description" \
    --made-by "research/recipes/adapter_ablation_runs.sh = $COMMON --target-vendor $vendor --target-split $split $extra -o $file"
}
for patient in SCD0000101 SCD0000201 SCD0000301; do
  register "adapter_ge_without_${patient}" "adapter-ge-without-${patient}" GE dev_labelled "--target-exclude ${patient}" \
    "Held-out check (research): the shipped GE recipe trained without ${patient}'s images, for scoring ${patient} only"
done
register adapter_siemens_no_feature_loss adapter-siemens-no-feature-loss Siemens train_unlabelled --no-feature-loss \
  "Ablation (research): the shipped Siemens recipe without the U-Net feature loss"
register adapter_siemens_l1_cycle adapter-siemens-l1-cycle Siemens train_unlabelled "--cycle-loss l1" \
  "Ablation (research): the shipped Siemens recipe with a plain L1 cycle loss instead of SSIM"
