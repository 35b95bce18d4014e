"""The slices an adapter trains on: checked arrays, random crops and flips per batch, a held-out set."""
from __future__ import annotations

import numpy as np
import torch

def as_slices(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty (N, H, W) array of slices, got shape {array.shape}")
    if array.shape[1] % 4 or array.shape[2] % 4:
        raise ValueError(f"{name}: slice height and width must be divisible by 4, got {array.shape[1:]}")
    return array


class SliceSampler:
    """Random batches of random crops (and flips) of one domain's slices, in [-1, 1]."""

    def __init__(self, slices: np.ndarray, crop_size: int | None, flip: bool, rng: np.random.Generator):
        self.slices, self.flip, self.rng = slices, flip, rng
        height, width = slices.shape[1:]
        self.crop = None if crop_size is None or crop_size >= min(height, width) else crop_size

    def batch(self, size: int) -> torch.Tensor:
        images = []
        for index in self.rng.integers(0, len(self.slices), size):
            image = self.slices[index]
            if self.crop:
                top = self.rng.integers(0, image.shape[0] - self.crop + 1)
                left = self.rng.integers(0, image.shape[1] - self.crop + 1)
                image = image[top:top + self.crop, left:left + self.crop]
            if self.flip:
                if self.rng.random() < 0.5:
                    image = image[:, ::-1]
                if self.rng.random() < 0.5:
                    image = image[::-1, :]
            images.append(np.ascontiguousarray(image))
        return torch.from_numpy(np.stack(images)[:, None]) * 2 - 1


def split_eval(target: np.ndarray, n_eval: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A fixed held-out set of target slices for checkpoint selection, and the rest for training.

    With too few slices to spare (fewer than 2 * n_eval), all are used for both:
    the criterion needs no labels, so sharing costs only independence.
    """
    n_eval = min(n_eval, len(target))
    order = rng.permutation(len(target))
    eval_slices = target[np.sort(order[:n_eval])]
    if len(target) < 2 * n_eval:
        return target, eval_slices
    return target[np.sort(order[n_eval:])], eval_slices
