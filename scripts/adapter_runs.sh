#!/bin/bash
# The extra adapter runs behind docs/results.md. lane A: GE leave-one-patient-out adapters; lane B: Siemens ablations
cd /work/main
M=../shared/data/manifest.csv
COMMON="--manifest $M --source-split train_labelled --lvunet lvunet-augment --histogram-match --seed 0 --time-limit-min 40"
laneA() {
  for S in SCD0000101 SCD0000201 SCD0000301; do
    mkdir -p runs/adapter_ge_loo_$S
    OMP_NUM_THREADS=1 .venv/bin/unetgan train-adapter $COMMON --target-vendor GE --target-split dev_labelled \
      --target-exclude $S --iterations 750 -o runs/adapter_ge_loo_$S/adapter.safetensors > runs/adapter_ge_loo_$S/log.txt 2>&1
  done
}
laneB() {
  mkdir -p runs/adapter_siemens_nofeature runs/adapter_siemens_l1
  OMP_NUM_THREADS=1 .venv/bin/unetgan train-adapter $COMMON --target-vendor Siemens --target-split train_unlabelled \
    --no-feature-loss --iterations 1000 -o runs/adapter_siemens_nofeature/adapter.safetensors > runs/adapter_siemens_nofeature/log.txt 2>&1
  OMP_NUM_THREADS=1 .venv/bin/unetgan train-adapter $COMMON --target-vendor Siemens --target-split train_unlabelled \
    --cycle-loss l1 --iterations 1000 -o runs/adapter_siemens_l1/adapter.safetensors > runs/adapter_siemens_l1/log.txt 2>&1
}
laneA & laneB & wait
