"""A training run's resumable state as one safetensors file: no pickle, readable anywhere.

`training_state.pt` (train_unet.TrainingRun) is read with `weights_only=True`, but it is still torch's
own format; a copy meant to travel (committed, handed between machines) is safer as plain tensors. Here:
the weights under `model/`, the optimiser's per-parameter tensors under `optimiser/<index>/`, and everything
else (step, schedule, optimiser settings, losses, CPU seconds) as JSON in the file's metadata, so one
atomic write holds all of it. `history.json` and `run_log.jsonl` travel beside it as they are.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from ..errors import InputError

STATE_FILE = "training_state.safetensors"
COPIED = ("history.json", "run_log.jsonl")


def to_portable(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {f"model/{name}": value for name, value in state["model"].items()}
    optimiser = state["optimiser"]
    for index, values in optimiser["state"].items():
        for key, value in values.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"optimiser state {key} is not a tensor: cannot be written as safetensors")
            tensors[f"optimiser/{int(index)}/{key}"] = value
    unsupported = set(state) - {"model", "optimiser", "schedule", "step", "best", "epoch_losses", "cpu_seconds",
                                "wall_seconds"}
    if unsupported:
        raise ValueError(f"no portable form for {', '.join(sorted(unsupported))} (weight averaging)")
    scalars = {key: state[key] for key in ("schedule", "step", "best", "epoch_losses", "cpu_seconds", "wall_seconds")}
    scalars["optimiser_param_groups"] = optimiser["param_groups"]
    return {name: value.contiguous() for name, value in tensors.items()}, scalars


def from_portable(tensors: dict[str, torch.Tensor], scalars: dict) -> dict:
    model = {name[len("model/"):]: value for name, value in tensors.items() if name.startswith("model/")}
    optimiser_state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimiser/"):
            _, index, key = name.split("/", 2)
            optimiser_state.setdefault(int(index), {})[key] = value
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
              for group in scalars["optimiser_param_groups"]]
    state = {key: scalars[key] for key in ("schedule", "step", "best", "epoch_losses", "cpu_seconds", "wall_seconds")}
    state.update(model=model, optimiser={"state": dict(sorted(optimiser_state.items())), "param_groups": groups})
    return state


def export_state(run_dir: Path, folder: Path) -> Path:
    """Copy the run folder's checkpoint (training_state.pt) into `folder` in portable form."""
    from ..outputs import atomic_path

    run_dir, folder = Path(run_dir), Path(folder)
    state = torch.load(run_dir / "training_state.pt", weights_only=True, map_location="cpu")
    tensors, scalars = to_portable(state)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / STATE_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"training_state": json.dumps(scalars)})
    for name in COPIED:
        if (run_dir / name).exists():
            with atomic_path(folder / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)
    return folder / STATE_FILE


def import_state(folder: Path, run_dir: Path) -> int:
    """Write the portable checkpoint in `folder` as the run folder's training_state.pt; the step it holds."""
    from ..outputs import atomic_path

    folder, run_dir = Path(folder), Path(run_dir)
    source = folder / STATE_FILE
    try:
        with safe_open(str(source), "pt") as handle:
            scalars = json.loads(handle.metadata()["training_state"])
        tensors = load_file(str(source))
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{source} is not a portable training checkpoint ({err})") from None
    state = from_portable(tensors, scalars)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (folder / name).exists():
            with atomic_path(run_dir / name) as tmp:
                shutil.copyfile(folder / name, tmp)
    with atomic_path(run_dir / "training_state.pt") as tmp:
        torch.save(state, tmp)
    return int(state["step"])
