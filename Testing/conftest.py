"""Shared fixtures: small synthetic data the tests make themselves (never ../shared)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

MODULE_DIR = Path(__file__).resolve().parent.parent / "UnetGANSlicer"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(1)
    return 1
