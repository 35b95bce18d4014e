"""Shared fixtures: small synthetic data the tests make themselves (never ../shared)."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

MODULE_DIR = Path(__file__).resolve().parent.parent / "UnetGANSlicer"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

pytest_plugins = ["no_skips"]  # any skipped test fails the suite
SCRIPTS_DIR = MODULE_DIR.parent / "scripts"


def load_script(name: str):
    """scripts/NAME.py as a module (scripts/ is not a package: the scripts import their neighbours by name)."""
    import importlib.util

    if str(SCRIPTS_DIR) not in sys.path:
        sys.path.insert(0, str(SCRIPTS_DIR))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    """The test run's environment, set when pytest starts (not on import: scripts such as
    scripts/benchmark_web.py import helpers from here and must keep the product's settings)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # the int8 models and their calibration images (unetgan/quantize.py): this run's own, never the user's cache
    if "UNETGAN_CACHE" not in os.environ:
        os.environ["UNETGAN_CACHE"] = tempfile.mkdtemp(prefix="unetgan-test-cache-")
        atexit.register(shutil.rmtree, os.environ["UNETGAN_CACHE"], ignore_errors=True)


def process_ended(pid: int, timeout: float = 10.0) -> bool:
    """True once the process is gone (or a zombie, ended but not yet reaped), within ``timeout`` seconds."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(1)
    return 1


def ring_study(n_frames=3, n_slices=4, size=80, spacing=(1.8, 1.8, 8.0), seed=0, contrast=1.0):
    """A tiny cine of concentric discs: blood pool (1) inside a myocardial ring (2), contracting over time.

    Returns (image (T, Z, Y, X) float32, labels uint8, spacing). Bright blood, grey muscle, dark
    background with noise: enough for plumbing and for a tiny network to learn in seconds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size / 2 + rng.uniform(-4, 4), size / 2 + rng.uniform(-4, 4)
    r = np.hypot(yy - cy, xx - cx) * spacing[0]
    image = np.zeros((n_frames, n_slices, size, size), np.float32)
    labels = np.zeros(image.shape, np.uint8)
    for t in range(n_frames):
        squeeze = 1.0 - 0.3 * np.sin(np.pi * t / max(1, n_frames - 1))
        for z in range(n_slices):
            taper = 1.0 - 0.12 * z
            inner, outer = 22.0 * squeeze * taper, (22.0 * squeeze + 9.0 / squeeze ** 0.5) * taper
            labels[t, z][r < outer] = 2
            labels[t, z][r < inner] = 1
            image[t, z] = np.where(r < inner, 1.0, np.where(r < outer, 0.35, 0.15 + 0.1 * (r < 70)))
    image = contrast * image * 400 + rng.normal(0, 12, image.shape).astype(np.float32)
    return np.clip(image, 0, None).astype(np.float32), labels, spacing


@pytest.fixture(scope="session")
def ring():
    return ring_study()


def write_tiny_lvunet(path, labels_voxels: bool = False):
    """A tiny LV-Unet with random weights, saved as the registry does (plumbing tests).

    `labels_voxels` biases the head towards the LV classes so that the random network
    still labels voxels (for tests that need non-empty segmentations)."""
    import torch

    from unetgan.networks.lvunet import LVUnet, LVUnetConfig
    from unetgan.registry import write_weights

    torch.manual_seed(0)
    config = LVUnetConfig(widths=(4, 8, 8, 8))
    model = LVUnet(config).eval()
    if labels_voxels:
        with torch.no_grad():
            model.head.bias.copy_(torch.tensor([0.0, 0.3, 0.3]))
    write_weights(model, path, {"architecture": "LVUnet", "config": config.to_dict()})
    return path


def write_tiny_adapter(path, residual_output: bool = False, **metadata):
    """A tiny random generator G_S saved as an adapter. Not residual: it changes images visibly;
    residual: it starts as the identity."""
    import torch

    from unetgan.networks.generator import GeneratorConfig, build_generator, save_generator

    torch.manual_seed(0)
    generator = build_generator(GeneratorConfig(filters=4, n_blocks=1, residual_output=residual_output))
    save_generator(generator, path, **{"source_vendor": "Philips", "target_vendor": "Siemens", **metadata})
    return path


@pytest.fixture(scope="session")
def tiny_lvunet_file(tmp_path_factory):
    return write_tiny_lvunet(tmp_path_factory.mktemp("models") / "tiny_lvunet.safetensors")
