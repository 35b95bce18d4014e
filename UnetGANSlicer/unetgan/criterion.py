"""The label-free criterion: how well the source LV-Unet copes with images, without labels.

Adapter training chooses its checkpoints with it (`training/train_adapter.py`), and `--adapter auto`
chooses among the shipped adapters with it when a study's scanner vendor has none
(`adapter_choice.py`); one definition, so that both judge alike.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from torch import nn

def _largest_component_fraction(mask: np.ndarray) -> float:
    labels, count = ndimage.label(mask)
    if count == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max() / mask.sum())


def mask_plausibility(mask: np.ndarray) -> float:
    """How much a (H, W) label mask looks like a short-axis LV, in [0, 1].

    A blood pool (1) in one piece, a myocardium (2) in one piece, and the pool
    surrounded by myocardium: the product of the largest-component fractions
    of pool and myocardium and the fraction of the pool's outer border that is
    myocardium. Apical slices with myocardium only score by the myocardium's
    largest-component fraction. Empty masks are not judged (NaN).
    """
    pool, myo = mask == 1, mask == 2
    if not pool.any() and not myo.any():
        return math.nan
    if not myo.any():
        return 0.0  # a pool with no wall is never right
    myo_score = _largest_component_fraction(myo)
    if not pool.any():
        return myo_score
    border = ndimage.binary_dilation(pool) & ~pool
    enclosure = float(myo[border].mean()) if border.any() else 0.0
    return _largest_component_fraction(pool) * myo_score * enclosure


def _dice_foreground(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Dice over labels 1 and 2 present in either mask; NaN when both are empty."""
    scores = []
    for label in (1, 2):
        x, y = a == label, b == label
        total = x.sum() + y.sum()
        if total:
            scores.append(2 * (x & y).sum() / total)
    return float(np.mean(scores)) if scores else math.nan


@torch.no_grad()
def segment_probabilities(lvunet: nn.Module, images_unit: torch.Tensor, flipped: bool = True, batch: int = 8):
    """LV-Unet probabilities (N, C, H, W) and, for a flip-consistency check, the
    labels predicted on the horizontally flipped images, flipped back (N, H, W)
    (None unless ``flipped``)."""
    probabilities, flipped_labels = [], []
    for start in range(0, len(images_unit), batch):
        x = images_unit[start:start + batch]
        probabilities.append(torch.softmax(lvunet(x).float(), 1))
        if flipped:
            flipped_labels.append(lvunet(x.flip(-1)).float().argmax(1).flip(-1))
    return torch.cat(probabilities), (torch.cat(flipped_labels) if flipped else None)


def foreground_area(lvunet: nn.Module, images_unit: torch.Tensor) -> float:
    """Mean predicted LV area (pixels) per slice, slices without LV counting as 0."""
    labels = segment_probabilities(lvunet, images_unit, flipped=False)[0].argmax(1)
    return float((labels > 0).flatten(1).sum(1).float().mean())


CRITERION_COMPONENTS = ("confidence", "flip_agreement", "plausibility", "area_ratio")


def label_free_criterion(lvunet: nn.Module, images_unit: torch.Tensor, reference_area: float) -> dict:
    """How well the source LV-Unet copes with these images, without labels; higher is better.

    ``images_unit``: (N, 1, H, W) in [0, 1], e.g. translated target slices
    G_S(x_T) of a fixed held-out set. ``reference_area``: ``foreground_area``
    of the LV-Unet on source slices (where it is known to work).

    Components, each in [0, 1]:
    - confidence: mean max-softmax over the pixels predicted as LV (blood pool
      or myocardium): a U-Net is unsure on images unlike its training data;
    - flip_agreement: Dice between the masks of an image and of its mirror
      image (flipped back), over slices with any LV: a network on familiar
      ground is equivariant to the flips it was trained with, a lost one is not;
    - plausibility: ``mask_plausibility`` averaged over slices with any LV:
      one pool, one myocardium, the pool enclosed by the myocardium;
    - area_ratio: min/max of the mean predicted LV area per slice (empty
      slices count as 0) and the source reference: catches a generator that
      erases, shrinks or inflates the heart, for which the three above can be
      excellent (a small tidy disc is confidently, stably and plausibly segmented).

    ``score`` is their geometric mean, so that no component can make up for
    another that has collapsed (with an arithmetic mean, a generator that
    shrank every heart to a dot scored best in a synthetic check). If no slice
    has any LV, every component is 0. ``coverage`` (fraction of slices with
    LV) is reported but not scored.
    """
    probabilities, flipped = segment_probabilities(lvunet, images_unit)
    confidence_map, labels = probabilities.max(1)
    labels_np, flipped_np = labels.cpu().numpy(), flipped.cpu().numpy()
    foreground = labels > 0
    found = foreground.flatten(1).any(1)
    result = {"coverage": float(found.float().mean())}
    if not found.any():
        result.update({name: 0.0 for name in CRITERION_COMPONENTS}, score=0.0)
        return result

    result["confidence"] = float(confidence_map[foreground].mean())
    agreements = [_dice_foreground(a, b) for a, b in zip(labels_np, flipped_np)]
    result["flip_agreement"] = float(np.nanmean(agreements))
    result["plausibility"] = float(np.nanmean([mask_plausibility(m) for m in labels_np[found.cpu().numpy()]]))
    area = float(foreground.flatten(1).sum(1).float().mean())
    result["area_ratio"] = min(area, reference_area) / max(area, reference_area) if reference_area > 0 else 0.0
    components = np.array([result[name] for name in CRITERION_COMPONENTS])
    result["score"] = float(np.prod(components) ** (1 / len(components)))
    return result
