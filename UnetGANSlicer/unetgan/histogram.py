"""Histogram matching to the source vendor: the no-training baseline the adaptation must beat.

The source vendor is summarised by the mean quantile function of its normalised
training volumes (stored beside the models; statistics, not images), and a target
volume's normalised intensities are mapped quantile to quantile onto it. Written
here because the library filters (SimpleITK's HistogramMatchingImageFilter) need a
reference image, and we ship no patient images.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .preprocess import intensity_window, normalise_intensity, sorted_quantiles

QUANTILES = np.linspace(0.0, 1.0, 257)


def quantile_function(volume: np.ndarray) -> np.ndarray:
    return np.quantile(normalise_intensity(volume), QUANTILES)


def reference_from(volumes: list[np.ndarray]) -> np.ndarray:
    return np.mean([quantile_function(v) for v in volumes], axis=0)


def match_to_reference(volume: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The volume with its normalised intensities mapped onto the reference quantile function."""
    stored = np.asarray(volume)
    volume = stored.astype(np.float32, copy=False)
    ordered = np.sort(volume, axis=None)  # one sort gives the window and all quantiles
    low, high = intensity_window(volume, ordered)
    # normalisation is monotonic, so the quantiles of the normalised volume are the normalised quantiles
    own = np.clip((sorted_quantiles(ordered, QUANTILES) - low) / (high - low), 0.0, 1.0)
    own = np.maximum.accumulate(own + np.arange(own.size) * 1e-9)  # strictly increasing for interp
    if ordered[-1] - ordered[0] < 2**20 and _integer_valued(stored, volume):
        # scanners store integers: map each grey level once (a look-up table), the same values as below
        first = int(ordered[0])
        levels = normalise_intensity(np.arange(first, int(ordered[-1]) + 1), (low, high))
        table = np.interp(levels, own, reference).astype(np.float32)
        return table[stored.astype(np.int64) - first]
    return np.interp(normalise_intensity(volume, (low, high)), own, reference).astype(np.float32)


def _integer_valued(stored: np.ndarray, volume: np.ndarray) -> bool:
    """Integer grey levels, in an integer type or (as readers often hand them over) in a float one."""
    if np.issubdtype(stored.dtype, np.integer):
        return True
    return bool(np.array_equal(volume, np.rint(volume)))


def save_reference(reference: np.ndarray, path: Path, vendor: str) -> None:
    Path(path).write_text(json.dumps({"vendor": vendor, "quantiles": QUANTILES.tolist(), "values": reference.tolist()}))


def load_reference(path: Path) -> np.ndarray:
    return np.array(json.loads(Path(path).read_text())["values"], dtype=np.float64)
