"""An adapter run's checkpoint: everything needed to resume it (four networks, optimisers, image pools, RNG).

safetensors for weights, torch.save only for optimiser state (loaded back with weights_only=True), JSON for
the rest; a new checkpoint replaces the old one only once it is completely written.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn

from ..losses.adversarial import ImagePool
from .adapter_config import AdapterConfig

WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE = "weights.safetensors", "optimizers.pt", "state.json"


def default_checkpoint_dir(out_path: Path) -> Path:
    return out_path.with_name(out_path.stem + "_checkpoint")


def save_checkpoint(directory: Path, nets: dict[str, nn.Module], optimizers: dict, pools: dict[str, ImagePool],
                     state: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"{name}.{key}": value.detach().float().cpu().contiguous()
               for name, net in nets.items() for key, value in net.state_dict().items()}
    state = dict(state, pools={})
    for name, pool in pools.items():
        pool_state, images = pool.state()
        state["pools"][name] = pool_state
        if images is not None:
            tensors[f"pool.{name}"] = images.float().cpu().contiguous()
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / WEIGHTS_FILE))
    torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, tmp / OPTIMIZER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
    # Swap in the complete new checkpoint only once it is fully written.
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def check_resumable(directory: Path, config: AdapterConfig) -> None:
    """Refuse, with a readable message, to resume into different networks."""
    if not (directory / STATE_FILE).is_file():
        raise FileNotFoundError(f"no adapter checkpoint in {directory}")
    saved = AdapterConfig.from_dict(json.loads((directory / STATE_FILE).read_text())["config"])
    if saved.generator_config() != config.generator_config():
        raise ValueError(f"cannot resume {directory}: its generator {saved.generator_config()} "
                         f"differs from the configuration's {config.generator_config()}")
    if (saved.disc_filters, saved.disc_layers) != (config.disc_filters, config.disc_layers):
        raise ValueError(f"cannot resume {directory}: its discriminator ({saved.disc_filters} filters, "
                         f"{saved.disc_layers} layers) differs from the configuration's "
                         f"({config.disc_filters}, {config.disc_layers})")


def load_checkpoint(directory: Path, nets: dict[str, nn.Module], optimizers: dict, pools: dict[str, ImagePool],
                     device: torch.device) -> dict:
    from safetensors.torch import load_file

    if not (directory / STATE_FILE).is_file():
        raise FileNotFoundError(f"no adapter checkpoint in {directory}")
    state = json.loads((directory / STATE_FILE).read_text())
    tensors = load_file(str(directory / WEIGHTS_FILE))
    for name, net in nets.items():
        prefix = name + "."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(own, strict=True)
        except RuntimeError as err:
            first_line = str(err).splitlines()[0]
            raise ValueError(f"checkpoint {directory} does not fit this configuration's {name}: {first_line}") from None
    saved = torch.load(directory / OPTIMIZER_FILE, map_location=device, weights_only=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(saved[name])
    for name, pool in pools.items():
        images = tensors.get(f"pool.{name}")
        pool.load_state(state["pools"][name], None if images is None else images.to(device))
    return state
