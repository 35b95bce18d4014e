"""Out-of-distribution warnings: say so next to the result instead of silently returning a bad mask.

Each check is cheap and label-free: the segmenter's confidence, whether the
myocardium encloses the blood pool (a ring), whether the image under the masks has the
bright-blood contrast of a bSSFP cine. Numbers no heart gives (volumes, EF, the myocardium's
variation over the cycle) are :mod:`.plausibility`'s, checked again after every edit.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_CONFIDENCE = 0.80
MIN_RING_FRACTION = 0.5  # of slices with blood pool, the share where myocardium surrounds it
# bSSFP blood is bright, myocardium dark: under expert labels the ratio of their mean intensities was
# 1.66-2.9 on our Philips, Siemens and GE data; masks over featureless tissue give about 1
MIN_BLOOD_TO_MYOCARDIUM = 1.3


def ring_fraction(labels: np.ndarray) -> float:
    """Share of slices with blood pool where the myocardium closes around it (no background touches it)."""
    slices = [z for z in range(labels.shape[0]) if (labels[z] == 1).any()]
    if not slices:
        return 0.0
    closed = 0
    for z in slices:
        # the LV's bounding box with a pixel of background around it (where the image has one): the same
        # answer as the whole slice, whose background all connects around the box, for a share of the pixels
        rows, cols = np.nonzero(labels[z])
        window = labels[z, max(rows.min() - 1, 0) : rows.max() + 2, max(cols.min() - 1, 0) : cols.max() + 2]
        lv = ndimage.binary_fill_holes(window > 0)
        touching_background = ndimage.binary_dilation(window == 1) & ~lv
        closed += not touching_background.any() and (window == 2).any()
    return closed / len(slices)


def blood_to_myocardium(image: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean image intensity under the blood pool over that under the myocardium (None without both)."""
    if not ((labels == 1).any() and (labels == 2).any()):
        return None
    myocardium = float(np.mean(image[labels == 2]))
    return float(np.mean(image[labels == 1])) / myocardium if myocardium > 0 else None


def frame_warnings(labels: np.ndarray, confidence: float, voxel_volume_ml: float, frame: int | None = None,
                   image: np.ndarray | None = None) -> list[str]:
    where = f"frame {frame}: " if frame is not None else ""  # frame: its 1-based number
    if not (labels > 0).any():
        return [f"{where}no left ventricle found: is this a short-axis cardiac cine?"]
    found = []
    if confidence < MIN_CONFIDENCE:
        found.append(f"{where}low segmentation confidence ({confidence:.2f}): the image may be far from the training data")
    if ring_fraction(labels) < MIN_RING_FRACTION:
        found.append(f"{where}the myocardium does not surround the blood pool on most slices: implausible anatomy")
    ratio = None if image is None else blood_to_myocardium(image, labels)
    if ratio is not None and ratio < MIN_BLOOD_TO_MYOCARDIUM:
        found.append(f"{where}the blood pool is not brighter than the myocardium under the masks (ratio {ratio:.2f}): "
                     "a bright-blood cine is expected; the masks may not follow anatomy")
    return found


def study_warnings(labels: np.ndarray, confidences: list[float], voxel_volume_ml: float,
                   images: np.ndarray | None = None) -> list[str]:
    """Warnings for a study; `images` (the input, shaped as `labels`) enables the contrast check."""
    frames = labels if labels.ndim == 4 else labels[None]
    pictures = [None] * len(frames) if images is None else (images if images.ndim == 4 else images[None])
    found = []
    for t, (frame, confidence, picture) in enumerate(zip(frames, confidences, pictures)):
        found += frame_warnings(frame, confidence, voxel_volume_ml, t + 1 if len(frames) > 1 else None, picture)
    if len(found) > 6:  # a long cine repeats the same warning per frame; keep it readable
        found = found[:5] + [f"... and {len(found) - 5} more warnings"]
    return found
