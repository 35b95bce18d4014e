#!/usr/bin/env bash
# The adapters that docs/results.md's extra columns need, all with the shipped recipe of
# scripts/recipes/adapter_robust_runs.sh (against lvunet-robust, histogram matching first, 500 iterations, seed 0):
# - three GE adapters, each trained without one Sunnybrook patient's images (leave one patient out), so the
#   held-out GE column scores every patient with an adapter that never saw it;
# - two Siemens ablations: without the U-Net feature loss, and with a plain L1 cycle loss instead of SSIM.
# Each is resumable (rerun to continue); `make results` reads them from the registry once registered
# (research/recipes/register_ablations.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export ITERATIONS=${ITERATIONS:-500}
train() {  # name vendor split extra-args...
  local name=$1 vendor=$2 split=$3; shift 3
  local out="runs/ablations/${name}/${name}.safetensors"
  # the adapter file is written at every evaluation: only this marker says the run reached its last iteration
  [ -f "$out.done" ] && { echo "$name: done"; return; }
  local resume=$([ -d "${out%.safetensors}_checkpoint" ] && echo --resume || true)
  OMP_NUM_THREADS=1 .venv/bin/unetgan train-adapter --manifest ../shared/data/manifest.csv --source-split train_labelled \
    --target-vendor "$vendor" --target-split "$split" --lvunet lvunet-robust --histogram-match \
    -o "$out" --iterations "$ITERATIONS" --seed 0 $resume "$@" > "runs/ablations/${name}.log" 2>&1
  local summary=$(tail -n 1 "runs/ablations/${name}.log")
  echo "$summary"
  # a call stops at the trainer's 40-minute cap: rerun the script to go on
  case "$summary" in *"\"iterations\": $ITERATIONS,"*) touch "$out.done" ;; esac
}
mkdir -p runs/ablations
for patient in SCD0000101 SCD0000201 SCD0000301; do
  train "adapter_ge_without_${patient}" GE dev_labelled --target-exclude "$patient"
done
train adapter_siemens_no_feature_loss Siemens train_unlabelled --no-feature-loss
train adapter_siemens_l1_cycle Siemens train_unlabelled --cycle-loss l1
