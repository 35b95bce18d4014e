"""Augmentation recipes for the LV-Unet, built from MONAI transforms.

- clean: geometric only (flips, 90-degree turns, small rotation/scale): the paper's baseline.
- noisy: clean + random Gaussian noise (the paper's "noisy Unet").
- augment: clean + strong intensity and spatial augmentation in the spirit of the
  M&Ms 2020 winners (gamma, contrast, bias field, blur, noise, brightness, larger affine).
"""
from __future__ import annotations

from monai import transforms as mt

METHODS = ("clean", "noisy", "augment")


def augmentation(method: str, seed: int = 0) -> mt.Compose:
    if method not in METHODS:
        raise ValueError(f"unknown augmentation {method!r}; choose from {', '.join(METHODS)}")
    keys = ["image", "label"]
    strong = method == "augment"
    steps = [
        mt.RandFlipd(keys, prob=0.5, spatial_axis=0),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
        mt.RandRotate90d(keys, prob=0.5, max_k=3),
        mt.RandAffined(keys, prob=0.7 if strong else 0.3, rotate_range=0.5 if strong else 0.2,
                       scale_range=0.2 if strong else 0.1, mode=("bilinear", "nearest"), padding_mode="zeros"),
    ]
    if method == "noisy":
        steps.append(mt.RandGaussianNoised(["image"], prob=0.8, std=0.1))
    if strong:
        steps += [
            mt.RandBiasFieldd(["image"], prob=0.4, coeff_range=(0.2, 0.5)),
            mt.RandAdjustContrastd(["image"], prob=0.5, gamma=(0.5, 2.0)),
            mt.RandScaleIntensityd(["image"], prob=0.5, factors=0.3),
            mt.RandShiftIntensityd(["image"], prob=0.3, offsets=0.1),
            mt.RandGaussianSmoothd(["image"], prob=0.2, sigma_x=(0.5, 1.2), sigma_y=(0.5, 1.2)),
            mt.RandGaussianNoised(["image"], prob=0.3, std=0.08),
            mt.RandGaussianSharpend(["image"], prob=0.1),
        ]
    compose = mt.Compose(steps)
    compose.set_random_state(seed=seed)
    return compose
