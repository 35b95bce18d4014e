"""Unet feature loss: L_Unet = E || f(x) - f(G(x)) ||^2.

f is the frozen source LV-Unet's ``tapped_features`` (by default its 7th and
9th residual blocks, after the third pooling): high-level features that say
"where the ventricle is" rather than "what the pixels look like". Matching
them between an image and its translation keeps the generator from adding or
removing anatomy, while leaving it free to change intensities and texture.

The LV-Unet is never trained here: it is kept in eval mode (batch-norm
statistics, dropout, if any, fixed) even when the surrounding module is put in
train mode, its parameters have requires_grad False, and the features of the
original image are computed without a graph. Gradients therefore flow only
through the translated image, into the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """GAN intensities [-1, 1] -> LV-Unet intensities [0, 1]."""
    return (x + 1) * 0.5


class UnetFeatureLoss(nn.Module):
    """Mean over taps of the mean squared feature difference (inputs in [-1, 1])."""

    def __init__(self, lvunet: nn.Module):
        super().__init__()
        if not hasattr(lvunet, "tapped_features"):
            raise TypeError("the LV-Unet must provide tapped_features(x) -> list of tensors")
        self.lvunet = lvunet
        self.lvunet.requires_grad_(False)
        self.lvunet.eval()

    def train(self, mode: bool = True) -> "UnetFeatureLoss":
        super().train(mode)
        self.lvunet.eval()  # frozen network: never switch to train behaviour
        return self

    def forward(self, original: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            reference = self.lvunet.tapped_features(to_unit_range(original))
        features = self.lvunet.tapped_features(to_unit_range(translated))
        if len(features) == 0:
            raise ValueError("the LV-Unet returned no tapped features")
        losses = [F.mse_loss(f.float(), r.float()) for f, r in zip(features, reference)]
        return torch.stack(losses).mean()
