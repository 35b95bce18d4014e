"""A small CNN that tells the source vendor's images from a target vendor's.

It judges the translation, not the segmentation: a translated target image that this
classifier, trained on real images only, takes for a source image has the source look
that the side-by-side view promises.
"""
from __future__ import annotations

import torch
from torch import nn


class VendorClassifier(nn.Module):
    """Four strided conv blocks, global average pooling, one logit (source = 1)."""

    def __init__(self, width: int = 16):
        super().__init__()
        layers, channels = [], 1
        for level in range(4):
            out = width * 2**level
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))[:, 0]
