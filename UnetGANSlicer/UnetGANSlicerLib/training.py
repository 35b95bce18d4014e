"""Train a Unet-GAN adapter from folders of unlabelled images (``unetgan train-adapter``, a subprocess).

The Slicer module's "Train adapter" section calls :func:`train_adapter`; progress,
cancel and errors work as for Adapt & Segment (see :mod:`UnetGANSlicerLib.runner`).
A new adapter never replaces an existing file: the name gets " (2)", " (3)" ...

The recipe is the shipped adapters' one (docs/models.md): the new vendor's images are
histogram-matched to the source vendor first, and the GAN is guided by the features of
the LV-Unet the shipped adapters were trained against (the augmented one), which then
segments the translated images. Without these two, training barely moves from the
identity. The new adapter is registered in the user registry (with its SHA256), so the
module lists it after a restart.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from unetgan.errors import InputError

from .models import available_models, register_user_model
from .runner import run_backend

PAIRED_SEGMENTER = "lvunet-robust"  # the LV-Unet the shipped adapters were trained against (models.json)
DEVICES = {"auto": "auto", "cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}


def default_adapter_dir() -> Path:
    """Where new adapters go: ``$UNETGAN_ADAPTER_DIR``, else ``~/.unetgan/adapters`` (the module folder may be read-only)."""
    return Path(os.environ.get("UNETGAN_ADAPTER_DIR") or Path.home() / ".unetgan" / "adapters")


def new_adapter_path(vendor: str | None, folder: Path | None = None) -> Path:
    folder = Path(folder) if folder is not None else default_adapter_dir()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", vendor or "adapter").strip("._") or "adapter"
    path, number = folder / f"{stem}.safetensors", 2
    while path.exists():
        path, number = folder / f"{stem} ({number}).safetensors", number + 1
    return path


def train_arguments(target_folder, source_folder, output, vendor, iterations, model, device) -> list[str]:
    for what, folder in (("target", target_folder), ("source", source_folder)):
        if not folder or not Path(folder).is_dir():
            raise InputError(f"the {what} image folder {str(folder or '')!r} does not exist")
    device_name = DEVICES.get(str(device).lower())
    if device_name is None:
        raise InputError(f"unknown device {device!r}: use auto, CPU or GPU")
    if int(iterations) < 1:
        raise InputError("iterations must be at least 1")
    arguments = ["train-adapter", "--target-dir", str(Path(target_folder).resolve()),
                 "--source-dir", str(Path(source_folder).resolve()), "--target-vendor", vendor or "target",
                 "-o", str(output), "--iterations", str(int(iterations)), "--device", device_name, "--progress",
                 "--histogram-match", "--lvunet", str(model or PAIRED_SEGMENTER)]
    return arguments


def train_adapter(target_folder, source_folder, vendor: str | None = None, iterations: int = 2000, model=None,
                  device: str = "auto", output=None, progress=None, cancel=None, log=None,
                  user_registry=None) -> Path:
    """Train an adapter (target -> source look), register it in ``user_registry`` (when given) and
    return the new adapter file."""
    output = Path(output) if output is not None else new_adapter_path(vendor)
    arguments = train_arguments(target_folder, source_folder, output, vendor, iterations, model, device)
    output.parent.mkdir(parents=True, exist_ok=True)
    run = run_backend(arguments, progress=progress, cancel=cancel, log=log)
    adapter = output
    for line in reversed(run.stdout):
        if line.startswith("{"):
            try:
                adapter = Path(json.loads(line).get("adapter") or output)
            except ValueError:
                pass
            break
    if user_registry is not None:
        source_vendor = next((c.source_vendor for c in available_models("segmenter") if c.name == PAIRED_SEGMENTER), None)
        register_user_model(adapter, f"adapter-{adapter.stem}", "adapter", user_registry, source_vendor=source_vendor,
                            target_vendor=vendor or None,
                            description=f"trained in Slicer: {int(iterations)} iterations, target images "
                                        f"{Path(target_folder).name}, source images {Path(source_folder).name}",
                            command="unetgan " + " ".join(arguments))
    return adapter
