"""The label-free plausibility checks (unetgan/quality.py)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from test_postprocess import lv_slice
from unetgan.quality import ring_fraction


def whole_slice_ring_fraction(labels):
    """The definition, on every pixel of each slice (ring_fraction looks at the LV's box only)."""
    slices = [z for z in range(labels.shape[0]) if (labels[z] == 1).any()]
    closed = 0
    for z in slices:
        lv = ndimage.binary_fill_holes(labels[z] > 0)
        closed += not (ndimage.binary_dilation(labels[z] == 1) & ~lv).any() and (labels[z] == 2).any()
    return closed / len(slices) if slices else 0.0


def test_ring_fraction_counts_slices_where_the_myocardium_closes_around_the_blood_pool():
    closed, crescent = lv_slice(), lv_slice(open_degrees=60)
    apex = lv_slice(blood_pool=False)  # no blood pool: not counted either way
    assert ring_fraction(np.stack([closed, closed, crescent, apex])) == 2 / 3
    assert ring_fraction(np.stack([apex])) == 0.0


def test_ring_fraction_is_the_whole_slice_answer():
    rng = np.random.default_rng(0)
    closed = lv_slice()
    shifted = [np.roll(closed, (dy, dx), (0, 1)) for dy, dx in rng.integers(-30, 30, size=(12, 2))]
    cut = np.zeros_like(closed)
    cut[:, :40] = closed[:, 24:]  # the blood pool reaches the image's edge
    notched = closed.copy()
    notched[30:34, 40:47] = 0  # a hole through the ring into the blood pool
    noisy = closed.copy()
    noisy[rng.random(closed.shape) < 0.02] = 0
    for stack in [np.stack(shifted), np.stack([cut, closed, notched]), np.stack([noisy, lv_slice(open_degrees=10)])]:
        assert ring_fraction(stack) == whole_slice_ring_fraction(stack)
