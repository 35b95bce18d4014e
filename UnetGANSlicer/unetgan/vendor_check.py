"""Does a translation produce the source look? A vendor classifier trained on real images judges it.

The classifier sees central 96 x 96 crops of the network slices (1.5 mm, normalised): M&Ms
slices fill only the central ~128 px of the 192 px grid and other vendors' slices fill all
of it, so a whole-slice classifier would learn the zero padding, not the vendor's look.

Figures: `balanced_accuracy(source, other)` is 1.0 when real source images and `other` are
told apart perfectly and 0.5 when they cannot be told apart; `source_look_rate(other)` is
the share of `other` taken for the source vendor.

A classifier trained on raw slices may tell vendors apart by their grey levels alone; the
texture classifier sees every slice through `matched_slices` (grey levels histogram-matched
to the source reference), so what is left to tell vendors apart is texture.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .histogram import match_to_reference
from .networks.vendor_classifier import VendorClassifier
from .preprocess import CROP_SIZE, SliceGrid

CLASSIFIER_CROP = 96
CONTENT = 128  # the central part of the 192 px grid that every vendor's slices cover
BATCH_NORM_BATCHES = 100  # balanced batches averaged for the BatchNorm statistics used in judging


def central_crops(slices: torch.Tensor) -> torch.Tensor:
    start = (CROP_SIZE - CLASSIFIER_CROP) // 2
    return slices[:, :, start : start + CLASSIFIER_CROP, start : start + CLASSIFIER_CROP]


def content_mask(shape, spacing) -> torch.Tensor:
    """(1, 1, 192, 192) bool: where a volume of this (Z, Y, X) shape lands on the network grid; the rest is padding."""
    grid = SliceGrid.for_spacing(tuple(shape[1:]), spacing)
    return grid.forward(torch.ones((1, 1) + tuple(int(n) for n in shape[1:]))) > 0.5


def matched_slices(slices: torch.Tensor, mask: torch.Tensor, reference: np.ndarray) -> torch.Tensor:
    """One volume's network slices with the grey levels of their content (mask) histogram-matched to the
    reference quantile function; padding stays 0, so it does not count as dark voxels in the quantiles.
    Every image the texture classifier sees, real or translated, goes through this same step on the same
    grid: a translation exists only as network slices, and matching real volumes on another grid would make
    the processing differ between the classes the classifier compares."""
    region = mask.expand_as(slices)
    out = torch.zeros_like(slices)
    out[region] = torch.from_numpy(match_to_reference(slices[region].numpy(), reference))
    return out


def _random_crops(slices: torch.Tensor, count: int, rng: np.random.Generator) -> torch.Tensor:
    low = (CROP_SIZE - CONTENT) // 2
    starts = rng.integers(low, low + CONTENT - CLASSIFIER_CROP + 1, size=(count, 2))
    indices = rng.integers(0, slices.shape[0], size=count)
    crops = torch.stack([slices[i, :, r : r + CLASSIFIER_CROP, c : c + CLASSIFIER_CROP] for i, (r, c) in zip(indices, starts)])
    flips = rng.random((count, 2)) < 0.5
    for k in range(count):  # orientation differs between scanners' conventions: not a vendor cue to learn
        dims = [d for d, flip in zip((1, 2), flips[k]) if flip]
        if dims:
            crops[k] = crops[k].flip(dims)
    return crops


def train_vendor_classifier(source: torch.Tensor, target: torch.Tensor, steps: int = 600, batch: int = 32,
                            lr: float = 1e-3, seed: int = 0, progress: bool = False) -> VendorClassifier:
    """Train on real source slices (label 1) and real target slices (label 0), balanced in every batch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = VendorClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    labels = torch.cat([torch.ones(batch // 2), torch.zeros(batch - batch // 2)])
    model.train()
    for _ in tqdm(range(steps), desc="vendor classifier", disable=not progress, leave=False):
        images = torch.cat([_random_crops(source, batch // 2, rng), _random_crops(target, batch - batch // 2, rng)])
        loss = F.binary_cross_entropy_with_logits(model(images), labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    _settle_batch_norm(model, source, target, batch, rng)
    return model.eval()


@torch.no_grad()
def _settle_batch_norm(model: VendorClassifier, source: torch.Tensor, target: torch.Tensor, batch: int,
                       rng: np.random.Generator, batches: int = BATCH_NORM_BATCHES) -> None:
    """Judging uses BatchNorm's running statistics, and during training those are a moving average of the last
    ~10 batches only. When the cue is subtle (texture, after histogram matching) that noise outweighs it: one
    such classifier took 92% of its own Siemens training slices for Philips in eval mode while telling every
    mixed batch apart in train mode. So, with the weights fixed, the statistics are recomputed as the plain
    average over many balanced training batches (torch's update_bn, as for weight averaging)."""
    torch.optim.swa_utils.update_bn((torch.cat([_random_crops(source, batch // 2, rng),
                                                _random_crops(target, batch - batch // 2, rng)])
                                     for _ in range(batches)), model)


@torch.inference_mode()
def source_look_rate(classifier: VendorClassifier, slices: torch.Tensor, batch: int = 64) -> float:
    """Share of the slices' central crops that the classifier takes for the source vendor."""
    crops = central_crops(slices)
    votes = [classifier(crops[i : i + batch]) > 0 for i in range(0, crops.shape[0], batch)]
    return float(torch.cat(votes).float().mean())


def balanced_accuracy(classifier: VendorClassifier, source: torch.Tensor, other: torch.Tensor) -> float:
    """Mean of the two classes' accuracies: 0.5 means `other` passes for the source vendor."""
    return 0.5 * (source_look_rate(classifier, source) + 1.0 - source_look_rate(classifier, other))
