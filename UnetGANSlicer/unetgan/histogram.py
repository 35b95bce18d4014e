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


class CountedOrder:
    """The sorted values of an integer image from its grey-level counts, without sorting (one pass):
    ``ordered[ranks]`` is what ``np.sort(image, axis=None)[ranks]`` gives, as float32."""

    def __init__(self, offsets: np.ndarray, first: int, n_levels: int):
        self.cumulative = np.cumsum(np.bincount(offsets.ravel(), minlength=n_levels))
        self.first, self.size = first, int(self.cumulative[-1])

    def __getitem__(self, ranks):
        ranks = np.asarray(ranks)
        ranks = np.where(ranks < 0, ranks + self.size, ranks)
        return (self.first + np.searchsorted(self.cumulative, ranks, side="right")).astype(np.float32)


def match_to_reference(volume: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The volume with its normalised intensities mapped onto the reference quantile function."""
    stored = np.asarray(volume)
    volume = stored.astype(np.float32, copy=False)
    lowest, highest = (float(volume.min()), float(volume.max())) if volume.size else (0.0, 0.0)
    # scanners store integers: their quantiles come from the grey levels' counts and each level is mapped
    # once (a look-up table), the same values as sorting every voxel and interpolating each (below)
    levels = highest - lowest < 2**20 and _integer_valued(stored, volume)
    if levels:
        first = int(lowest)
        offsets = stored.astype(np.int64) - first
        ordered = CountedOrder(offsets, first, int(highest) - first + 1)
    else:
        ordered = np.sort(volume, axis=None)  # one sort gives the window and all quantiles
    low, high = intensity_window(volume, ordered)
    # normalisation is monotonic, so the quantiles of the normalised volume are the normalised quantiles
    own = np.clip((sorted_quantiles(ordered, QUANTILES) - low) / (high - low), 0.0, 1.0)
    own = np.maximum.accumulate(own + np.arange(own.size) * 1e-9)  # strictly increasing for interp
    if levels:
        table = np.interp(normalise_intensity(np.arange(first, int(highest) + 1), (low, high)), own, reference)
        return table.astype(np.float32)[offsets]
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
