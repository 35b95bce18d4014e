"""Does a translation produce the source look? A vendor classifier trained on real images judges it.

The classifier sees central 96 x 96 crops of the network slices (1.5 mm, normalised): M&Ms
slices fill only the central ~128 px of the 192 px grid and other vendors' slices fill all
of it, so a whole-slice classifier would learn the zero padding, not the vendor's look.

Figures: `balanced_accuracy(source, other)` is 1.0 when real source images and `other` are
told apart perfectly and 0.5 when they cannot be told apart; `source_look_rate(other)` is
the share of `other` taken for the source vendor.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .networks.vendor_classifier import VendorClassifier
from .preprocess import CROP_SIZE

CLASSIFIER_CROP = 96
CONTENT = 128  # the central part of the 192 px grid that every vendor's slices cover


def central_crops(slices: torch.Tensor) -> torch.Tensor:
    start = (CROP_SIZE - CLASSIFIER_CROP) // 2
    return slices[:, :, start : start + CLASSIFIER_CROP, start : start + CLASSIFIER_CROP]


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
    return model.eval()


@torch.inference_mode()
def source_look_rate(classifier: VendorClassifier, slices: torch.Tensor, batch: int = 64) -> float:
    """Share of the slices' central crops that the classifier takes for the source vendor."""
    crops = central_crops(slices)
    votes = [classifier(crops[i : i + batch]) > 0 for i in range(0, crops.shape[0], batch)]
    return float(torch.cat(votes).float().mean())


def balanced_accuracy(classifier: VendorClassifier, source: torch.Tensor, other: torch.Tensor) -> float:
    """Mean of the two classes' accuracies: 0.5 means `other` passes for the source vendor."""
    return 0.5 * (source_look_rate(classifier, source) + 1.0 - source_look_rate(classifier, other))
