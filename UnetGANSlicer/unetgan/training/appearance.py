"""Appearance augmentation that changes how tissue looks but never where it is.

Two augmentations no PyPI package offers for 2D MRI slices, written here:

- `random_intensity_network` (GIN, Ouyang et al., IEEE TMI 2022; RandConv, ICLR 2021): the image
  goes through a few freshly random tiny convolution layers and is blended with the original.
  Texture and contrast change, shapes stay.
- `TargetHistograms`: a source slice's intensities mapped onto the quantile function of a random
  *unlabelled* target-vendor volume, so the network sees target intensity distributions in training.
- `match_histogram_of`: an augmented sample mapped back onto its own original histogram, quantile to quantile
  as histogram.py maps every other vendor's volume onto the source histogram at inference: what stays is what
  histogram matching cannot undo (which tissue is brighter than which, texture), which is what the LV-Unet
  meets on an adapted image.

Every random draw comes from a generator the caller seeds, so a training step is reproducible
from (seed, step) alone.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..histogram import QUANTILES

GIN_LAYERS = (2, 4)  # how many random conv layers (inclusive range)
GIN_CHANNELS = 2
GIN_KERNELS = (1, 3)


def random_intensity_network(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """GIN on one image (C, H, W) in [0, 1]: a random shallow conv net, blended by a random weight,
    rescaled to the input's range. Channels (a slice and its neighbours) all go through the same network,
    as one scanner's contrast applies to the whole stack."""
    x = image[:, None]
    layers = int(torch.randint(GIN_LAYERS[0], GIN_LAYERS[1] + 1, (1,), generator=generator))
    channels_in = 1
    for layer in range(layers):
        channels_out = 1 if layer == layers - 1 else GIN_CHANNELS
        k = GIN_KERNELS[int(torch.randint(0, len(GIN_KERNELS), (1,), generator=generator))]
        weight = torch.randn(channels_out, channels_in, k, k, generator=generator)
        bias = torch.randn(channels_out, generator=generator) * 0.1
        x = F.conv2d(x, weight, bias, padding=k // 2)
        if layer < layers - 1:
            x = F.leaky_relu(x, 0.2)
        channels_in = channels_out
    x = x[:, 0]
    low, high = x.amin(), x.amax()
    if float(high - low) < 1e-6:
        return image
    x = (x - low) / (high - low) * (image.amax() - image.amin()) + image.amin()
    alpha = float(torch.rand(1, generator=generator))
    return alpha * x + (1 - alpha) * image


def quantile_function_of(slices: np.ndarray) -> np.ndarray:
    """Quantiles (at histogram.QUANTILES) of normalised network slices, strictly increasing for np.interp."""
    values = np.quantile(np.asarray(slices, dtype=np.float32), QUANTILES)
    return np.maximum.accumulate(values + np.arange(values.size) * 1e-7)


def match_histogram_of(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """image (C, H, W) with its intensities mapped, order kept, onto reference's quantile function."""
    values = image.numpy()
    matched = np.interp(values, quantile_function_of(values), quantile_function_of(reference.numpy()))
    return torch.from_numpy(matched.astype(np.float32))


class TargetHistograms:
    """Quantile functions of unlabelled target-vendor volumes (network slices, normalised), to map
    source crops onto. Statistics only: no target image is kept."""

    def __init__(self, target_quantiles: np.ndarray):
        self.target = np.asarray(target_quantiles, dtype=np.float64)
        if self.target.ndim != 2 or self.target.shape[1] != QUANTILES.size or self.target.shape[0] == 0:
            raise ValueError(f"expected (volumes, {QUANTILES.size}) target quantiles, got {self.target.shape}")

    @classmethod
    def from_volumes(cls, volumes) -> "TargetHistograms":
        """From an iterable of (Z, 1, 192, 192) prepared slices, one entry per target volume."""
        return cls(np.stack([quantile_function_of(v) for v in volumes]))

    def match(self, image: np.ndarray, source_quantiles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.target[rng.integers(0, self.target.shape[0])]
        return np.interp(image, source_quantiles, target).astype(np.float32)


def source_translator(path):
    """A source -> target generator file (image-level adaptation) as a function of one (1, H, W) crop in [0, 1];
    the generator works in [-1, 1]."""
    from ..networks.generator import load_generator

    generator = load_generator(path)

    @torch.no_grad()
    def translate(image: torch.Tensor) -> torch.Tensor:
        return ((generator(image[None] * 2 - 1)[0] + 1) / 2).clamp(0, 1)

    return translate
