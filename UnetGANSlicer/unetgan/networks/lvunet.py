"""LV-Unet: an asymmetric residual encoder-decoder for LV blood pool and myocardium.

The encoder is deep (residual blocks per level, default 1, 2, 3, 3: nine blocks, the
7th-9th after the third max-pooling), the decoder light (one residual block per level):
the encoder's high-level features are what the Unet feature loss compares, so they
get the capacity. Blocks are numbered from 1 over the encoder, as the paper counts them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..tta import TTA_FLIPS, check_tta
from ..errors import ModelError
from ..weights import load_state, read_weights


@dataclass
class LVUnetConfig:
    in_channels: int = 1
    n_classes: int = 3
    widths: tuple[int, ...] = (16, 32, 64, 128)
    blocks: tuple[int, ...] = (1, 2, 3, 3)
    feature_taps: tuple[int, ...] = (7, 9)

    @property
    def context_slices(self) -> int:
        """Through-plane neighbours on either side the network sees as extra input channels (preprocess.
        with_neighbours); 0 for a network of one slice."""
        return (self.in_channels - 1) // 2

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "LVUnetConfig":
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class LVUnet(nn.Module):
    def __init__(self, config: LVUnetConfig | None = None, **overrides):
        super().__init__()
        self.config = config or LVUnetConfig(**overrides)
        cfg = self.config
        if len(cfg.widths) != len(cfg.blocks):
            raise ValueError("widths and blocks need one entry per level")
        total = sum(cfg.blocks)
        if any(not 1 <= t <= total for t in cfg.feature_taps):
            raise ValueError(f"feature taps must be encoder blocks 1..{total}, got {cfg.feature_taps}")
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, cfg.widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cfg.widths[0]), nn.ReLU(inplace=True))
        self.encoder = nn.ModuleList()
        previous = cfg.widths[0]
        for width, count in zip(cfg.widths, cfg.blocks):
            level = nn.ModuleList()
            for _ in range(count):
                level.append(ResidualBlock(previous, width))
                previous = width
            self.encoder.append(level)
        self.decoder = nn.ModuleList()
        for level in range(len(cfg.widths) - 1, 0, -1):
            self.decoder.append(ResidualBlock(cfg.widths[level] + cfg.widths[level - 1], cfg.widths[level - 1]))
        self.head = nn.Conv2d(cfg.widths[0], cfg.n_classes, 1)

    def _encode(self, x, taps=()):
        skips, tapped, number = [], [], 0
        x = self.stem(x)
        for index, level in enumerate(self.encoder):
            if index > 0:
                x = F.max_pool2d(x, 2)
            for block in level:
                x = block(x)
                number += 1
                if number in taps:
                    tapped.append(x)
            skips.append(x)
        return skips, tapped

    def forward(self, x):
        skips, _ = self._encode(x)
        x = skips[-1]
        for block, skip in zip(self.decoder, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)

    @torch.no_grad()
    def fold_batch_norms(self) -> "LVUnet":
        """Fold each BatchNorm into the convolution before it (inference only: same outputs, about 15% faster
        on a CPU). The folded network cannot be trained further."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        self.eval()
        for module in self.modules():
            if isinstance(module, nn.Sequential):
                for i in range(len(module) - 1):
                    if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                        module[i], module[i + 1] = fuse_conv_bn_eval(module[i], module[i + 1]), nn.Identity()
        return self

    def tapped_features(self, x) -> list[torch.Tensor]:
        """Outputs of the encoder blocks named in `config.feature_taps` (for the Unet feature loss)."""
        return self._encode(x, taps=set(self.config.feature_taps))[1]


def widen_to_context(tensors: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """A one-slice LV-Unet's weights for a network that also sees neighbour slices (in_channels = 1 + 2 context):
    the stem's kernel goes to the centre channel and the neighbours' kernels start at zero, so the wider
    network starts out computing exactly what the one-slice network did."""
    stem = tensors["stem.0.weight"]
    if stem.shape[1] == in_channels:
        return tensors
    if stem.shape[1] != 1 or in_channels % 2 == 0:
        raise ModelError(f"cannot widen a stem of {stem.shape[1]} input channels to {in_channels}")
    wide = stem.new_zeros(stem.shape[0], in_channels, *stem.shape[2:])
    wide[:, in_channels // 2] = stem[:, 0]
    return {**tensors, "stem.0.weight": wide}


def widen_network(network: LVUnet, in_channels: int) -> LVUnet:
    """The network as one that also sees neighbour slices (widen_to_context): a new LV-Unet, in eval mode,
    computing what `network` computes from the centre slice; `network` itself when it already fits."""
    if network.config.in_channels == in_channels:
        return network
    wide = LVUnet(replace(network.config, in_channels=in_channels))
    wide.metadata = getattr(network, "metadata", None)
    return load_state(wide, widen_to_context(network.state_dict(), in_channels), "the widened network")


def load_lvunet_file(path) -> LVUnet:
    """The LV-Unet a weights file describes (architecture and config from its metadata), loaded strictly,
    in eval mode, with its metadata on `model.metadata`."""
    path = Path(path)
    tensors, metadata = read_weights(path)
    if metadata.get("architecture") != "LVUnet":
        raise ModelError(f"{path.name} is not an LV-Unet (architecture: {metadata.get('architecture', 'unknown')})")
    model = LVUnet(LVUnetConfig.from_dict(metadata.get("config", {})))
    model.metadata = metadata
    return load_state(model, tensors, path.name)




def with_tta(network: nn.Module, tta: str) -> nn.Module:
    """The network with test-time augmentation `tta` (a key of TTA_FLIPS)."""
    return network if check_tta(tta) == "none" else FlipAveraged(network, TTA_FLIPS[tta])


class FlipAveraged(nn.Module):
    """Test-time augmentation: the network's logits averaged over in-plane flips (the four unless `flips`
    says otherwise, e.g. TTA_FLIPS["rot180"]: the image and its half-turn, 2x the work)."""

    FLIPS = TTA_FLIPS["flip4"]

    def __init__(self, network: nn.Module, flips=FLIPS):
        super().__init__()
        self.network, self.flips = network, tuple(flips)
        self.config, self.metadata = getattr(network, "config", None), getattr(network, "metadata", None)

    def forward(self, x):
        total = None
        for dims in self.flips:
            out = _flipped(self.network(_flipped(x, dims)), dims)
            total = out if total is None else total + out
        return total / len(self.flips)


def _flipped(x: torch.Tensor, dims: tuple) -> torch.Tensor:
    """x flipped along dims; on the CPU through numpy: torch.flip copies through an index kernel (~10 ms per
    call on a heart box, a third of an int8 network call), numpy's copy of a flipped view does not."""
    if not dims:
        return x
    if x.device.type != "cpu":
        return x.flip(dims)
    return torch.from_numpy(np.ascontiguousarray(np.flip(x.numpy(), dims)))
