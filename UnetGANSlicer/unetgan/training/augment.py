"""Augmentation recipes for the LV-Unet, built from MONAI transforms.

- clean: geometric only (flips, 90-degree turns, small rotation/scale): the paper's baseline.
- noisy: clean + random Gaussian noise (the paper's "noisy Unet").
- augment: clean + strong intensity and spatial augmentation in the spirit of the
  M&Ms 2020 winners (gamma, contrast, bias field, blur, noise, brightness, larger affine).
- robust: the M&Ms winners' spatial recipe, milder everyday intensity changes, and MRI artefacts
  (bias field, Gibbs ringing, k-space spikes, Rician noise, histogram shifts). The training loop adds
  GIN and histogram matching toward target vendors on top (training/appearance.py).
"""
from __future__ import annotations

from monai import transforms as mt

METHODS = ("clean", "noisy", "augment", "robust")


def augmentation(method: str, seed: int = 0) -> mt.Compose:
    if method not in METHODS:
        raise ValueError(f"unknown augmentation {method!r}; choose from {', '.join(METHODS)}")
    keys = ["image", "label"]
    if method == "robust":
        return _seeded(_robust(keys), seed)
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
    return _seeded(steps, seed)


def _seeded(steps, seed: int) -> mt.Compose:
    compose = mt.Compose(steps)
    compose.set_random_state(seed=seed)
    return compose


def _robust(keys) -> list:
    image = ["image"]
    return [
        mt.RandFlipd(keys, prob=0.5, spatial_axis=0),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
        mt.RandRotate90d(keys, prob=0.5, max_k=3),
        mt.RandAffined(keys, prob=0.7, rotate_range=0.5, scale_range=0.2, shear_range=0.05,
                       mode=("bilinear", "nearest"), padding_mode="zeros"),
        mt.RandBiasFieldd(image, prob=0.3, coeff_range=(0.05, 0.2)),
        mt.RandAdjustContrastd(image, prob=0.3, gamma=(0.6, 1.6)),
        mt.RandScaleIntensityd(image, prob=0.3, factors=0.2),
        mt.RandShiftIntensityd(image, prob=0.3, offsets=0.1),
        mt.RandHistogramShiftd(image, prob=0.15, num_control_points=(5, 12)),
        mt.RandGibbsNoised(image, prob=0.15, alpha=(0.2, 0.7)),
        mt.RandKSpaceSpikeNoised(image, prob=0.05, intensity_range=(5.5, 7.0)),
        mt.RandGaussianSmoothd(image, prob=0.15, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0)),
        mt.RandGaussianSharpend(image, prob=0.05),
        mt.RandRicianNoised(image, prob=0.2, std=0.05, sample_std=True),
    ]
