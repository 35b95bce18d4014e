"""PatchGAN discriminator (Isola et al. 2017, as used by CycleGAN).

With the defaults (64 filters, 3 stride-2 layers) every output value judges
one 70x70 patch of the input: C64-C128-C256 with stride 2, C512 with stride 1,
then a 1-channel 4x4 conv. Instance norm everywhere except on the first layer,
LeakyReLU(0.2). The output is a raw score map (least-squares GAN: no sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 1, filters: int = 64, n_layers: int = 3):
        super().__init__()
        if n_layers < 1:
            raise ValueError("n_layers must be >= 1")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, filters, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = filters
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1  # the last widening conv keeps the resolution
            out = filters * min(2**i, 8)
            layers += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        layers += [nn.Conv2d(channels, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def receptive_field(n_layers: int = 3) -> int:
    """Side of the input patch seen by one output value (70 for n_layers=3)."""
    # Walk back from one output pixel: kernel 4 everywhere, strides as built above.
    strides = [2] + [2 if i < n_layers else 1 for i in range(1, n_layers + 1)] + [1]
    field = 1
    for stride in reversed(strides):
        field = (field - 1) * stride + 4
    return field
