"""Training under torchrun: two CPU processes (gloo) against one process with the doubled batch, resume,
and only rank 0 writing. The real command line, a tiny LV-Unet, a few steps."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from unetgan.distributed import SINGLE, Ranks, shares
from unetgan.networks.lvunet import LVUnet, LVUnetConfig
from unetgan.phantom import write_dataset
from unetgan.training.train_adapter import AdapterConfig, _build_networks
from unetgan.weights import read_weights

TINY = ["--widths", "4,8,8,8", "--crop", "48", "--epochs", "1", "--steps-per-epoch", "3", "--lr", "0.01",
        "--val-subjects", "1", "--seed", "3", "--device", "cpu"]


def train_unet_cli(manifest, out, *extra, processes: int = 1):
    """`unetgan train-unet` in one process, or in `processes` processes started by torchrun (gloo)."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    command = [*launcher, "-m", "unetgan", "train-unet", "--manifest", manifest, "--vendor", "Philips",
               "--split", "train_labelled", "-o", out, *TINY, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, timeout=300)


def weights(folder):
    return read_weights(folder / "last.safetensors")[0]


def distance(a: dict, b: dict) -> float:
    """Root-mean-square difference over all trained parameters."""
    keys = [k for k in a if a[k].is_floating_point() and "running" not in k]
    return float(torch.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in keys) / sum(a[k].numel() for k in keys)))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    write_dataset(folder, vendors=("Philips",), subjects=3, seed=2, n_phases=2, n_slices=3, matrix=96)
    return folder / "manifest.csv"


def test_the_sub_batches_of_a_step_do_not_depend_on_the_number_of_processes():
    assert shares(5, 1, SINGLE) == [5]  # one process, one shard: step k is seeded (seed, k) as always
    assert shares(5, 4, SINGLE) == [20, 21, 22, 23]
    two = [shares(5, 4, Ranks(rank, 2)) for rank in (0, 1)]
    assert two == [[20, 22], [21, 23]] and sorted(two[0] + two[1]) == shares(5, 4, SINGLE)
    with pytest.raises(ValueError):
        shares(5, 3, Ranks(0, 2))


def train_here(manifest, out, stop_at_first_step=False, **settings):
    """`train-unet` in this process, with the command line's data and the TINY settings."""
    from unetgan.training.datasets import labelled_volumes
    from unetgan.training.train_unet import UnetTrainConfig, train_unet

    config = UnetTrainConfig.fast(widths=(4, 8, 8, 8), crop=48, epochs=1, steps_per_epoch=3, lr=0.01, val_subjects=1,
                                  seed=3, device="cpu", **settings)
    return train_unet(labelled_volumes(manifest, ["Philips"], ["train_labelled"]), config, out, progress=False,
                      log=lambda *_: None, time_limit_s=0 if stop_at_first_step else None)


def test_two_processes_train_as_one_process_with_the_doubled_batch_and_resume(manifest, tmp_path, torch_threads):
    # one process, batch 4 in two seeded sub-batches of 2, stopped by the time limit after the first step ...
    ddp = tmp_path / "ddp"
    train_here(manifest, ddp, batch=4, shards=2, stop_at_first_step=True)
    # ... resumed by two processes with batch 2 each: the same sub-batches, now one per process
    resumed = train_unet_cli(manifest, ddp, "--batch", "2", processes=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = [json.loads(line) for line in (ddp / "run_log.jsonl").read_text().splitlines()]
    # rank 0 alone writes: one resume and one checkpoint at the epoch's end, not one per process
    assert [(e["event"], e["step"]) for e in events] == [("checkpoint", 1), ("resume", 1), ("checkpoint", 3)]
    assert resumed.stdout.count("best_val_dice") == 1

    one, half = tmp_path / "one", tmp_path / "half"
    train_here(manifest, one, batch=4, shards=2)  # the whole run in one process
    train_here(manifest, half, batch=2)  # one process with one process's share only
    torch.manual_seed(3)
    start = LVUnet(LVUnetConfig(widths=(4, 8, 8, 8))).state_dict()
    moved, off = distance(weights(one), start), distance(weights(ddp), weights(one))
    # On CPUs each process normalises with its own batch's BatchNorm statistics (2 samples against 4: torch
    # has no SyncBatchNorm for gloo), so the two runs are close, not identical (measured: 0.14 of the way the
    # weights moved). Had each process trained on its own share, the weights would be as far off as with
    # one process's share alone (measured: 1.2 of the way moved, 9x the two processes' distance).
    assert off < 0.3 * moved
    assert distance(weights(half), weights(one)) > 4 * off
    losses = [json.loads((folder / "history.json").read_text())[-1]["loss"] for folder in (ddp, one)]
    assert losses[0] == pytest.approx(losses[1], rel=0.04)



ADAPTER_RUN = """
import sys
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from unetgan.distributed import join
from unetgan.registry import load_lvunet
from unetgan.training.train_adapter import AdapterConfig, _AdapterTraining, train_adapter

out, lvunet = Path(sys.argv[1]), load_lvunet(sys.argv[2])
rng = np.random.default_rng(0)
source, target = rng.uniform(0, 1, (6, 64, 64)).astype(np.float32), rng.uniform(0, 0.7, (6, 64, 64)).astype(np.float32)
config = AdapterConfig.fast(filters=4, n_blocks=1, disc_filters=4, iterations=3, crop_size=32, eval_every=3,
                            n_eval_slices=2, device="cpu", time_limit_s=None)
train_adapter(source, target, lvunet, config, out / "adapter.safetensors", progress=lambda *args: None)

# the training steps themselves, to compare every rank's networks afterwards
where = join()
run = _AdapterTraining(source, target, lvunet, config, where)
run.seed_samplers_for_rank(0)
first_crop = run.source.batch(1)
for iteration in range(2):
    run.step(iteration)
for name in ("G_S", "D_T"):
    save_file({k: v.contiguous() for k, v in run.nets[name].state_dict().items()}, str(out / f"{name}_{where.rank}.safetensors"))
save_file({"crop": first_crop}, str(out / f"crop_{where.rank}.safetensors"))
"""


def test_adapter_training_under_torchrun_keeps_the_ranks_in_step_and_writes_once(tmp_path, tiny_lvunet_file):
    from safetensors.torch import load_file

    script = tmp_path / "adapter_run.py"
    script.write_text(ADAPTER_RUN)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script), str(tmp_path), str(tiny_lvunet_file)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((tmp_path / "adapter_checkpoint" / "state.json").read_text())
    assert state["iteration"] == 3 and (tmp_path / "adapter.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if "checkpoint" in p.name) == ["adapter_checkpoint"]  # no leftovers
    crops = [load_file(str(tmp_path / f"crop_{rank}.safetensors"))["crop"] for rank in (0, 1)]
    assert not torch.equal(*crops)  # each process trains on its own crops ...
    config = AdapterConfig.fast(filters=4, n_blocks=1, disc_filters=4)
    for name, initial in _build_networks(config).items():
        if name not in ("G_S", "D_T"):
            continue
        ranks = [load_file(str(tmp_path / f"{name}_{rank}.safetensors")) for rank in (0, 1)]
        assert ranks[0].keys() == initial.state_dict().keys()
        assert any(not torch.equal(ranks[0][k], v) for k, v in initial.state_dict().items())  # it trained ...
        for key in ranks[0]:  # ... and the averaged gradients kept both processes' networks identical
            torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=1e-5, atol=1e-6)
