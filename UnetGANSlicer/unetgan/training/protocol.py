"""Protocol augmentation: what another acquisition protocol does to a training crop, labels kept exact.

- `partial_volume`: a thicker slice (or one nearer the apex) averages the tissue above or below it: the crop is
  blended with the same crop of its neighbour slice, its labels stay (as an expert labels the middle).
- `zoom`: the heart at another size on the network grid, as pixel spacings of 0.7-2.0 mm and headers that state
  a wrong one (the M&Ms files state 1 mm) give; image bilinear, labels nearest.
- `low_resolution`: an acquired pixel coarser than the network's 1.5 mm grid: detail lost, then interpolated.
- `off_centre_top`: a crop whose heart sits far from its centre, as a heart off the field of view's centre.

Each takes a numpy generator seeded by the caller (training step), so a step replays exactly. MONAI's
transforms have no through-plane blend of neighbour slices; its zoom resizes the array, where these keep the crop.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NETWORK_PIXEL_MM = 1.5  # preprocess.TARGET_SPACING_MM
ACQUIRED_PIXEL_MM = (0.7, 2.0)
# scanners acquire a coarser matrix than they reconstruct (Philips 176 of 256): acquired = pixel x this
ACQUIRED_OVER_RECON = (1.0, 1.5)
PARTIAL_VOLUME_WEIGHT = (0.1, 0.45)


def neighbour_indices(slice_counts: list[int]) -> np.ndarray:
    """(N, 2): the index of the slice before and after each slice within its own volume (itself at the ends)."""
    out = []
    start = 0
    for count in slice_counts:
        index = np.arange(start, start + count)
        out.append(np.stack([np.maximum(index - 1, start), np.minimum(index + 1, start + count - 1)], axis=1))
        start += count
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def partial_volume(image: torch.Tensor, neighbour: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    weight = float(rng.uniform(*PARTIAL_VOLUME_WEIGHT))
    return (1.0 - weight) * image + weight * neighbour


def zoom(image: torch.Tensor, label: torch.Tensor, rng: np.random.Generator,
         factors: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnify (factor > 1) or shrink about the crop's centre by a log-uniform factor; zeros where the crop
    shows what lay outside it."""
    factor = float(np.exp(rng.uniform(np.log(factors[0]), np.log(factors[1]))))
    theta = torch.tensor([[1.0 / factor, 0.0, 0.0], [0.0, 1.0 / factor, 0.0]])[None]
    grid = F.affine_grid(theta, (1, 1) + tuple(image.shape[-2:]), align_corners=False)
    zoomed = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    labels = F.grid_sample(label[None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
    return zoomed, labels.round().to(label.dtype)


def low_resolution(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The crop as acquired at a random pixel size in ACQUIRED_PIXEL_MM (times ACQUIRED_OVER_RECON) and
    interpolated onto the network grid; unchanged where that is finer than the grid."""
    acquired = float(rng.uniform(*ACQUIRED_PIXEL_MM) * rng.uniform(*ACQUIRED_OVER_RECON))
    if acquired <= NETWORK_PIXEL_MM:
        return image
    size = tuple(image.shape[-2:])
    coarse = tuple(max(8, int(round(n * NETWORK_PIXEL_MM / acquired))) for n in size)
    down = F.interpolate(image[None], size=coarse, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(down, size=size, mode="bilinear", align_corners=False)[0]


def off_centre_top(centre: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Top-left corner of a crop whose heart centre lies between a quarter and nearly half the crop from
    the crop's centre, in a random direction."""
    distance = rng.uniform(size / 4, size / 2 - size / 10)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    shift = np.round(distance * np.array([np.sin(angle), np.cos(angle)])).astype(np.int64)
    return centre - size // 2 + shift
