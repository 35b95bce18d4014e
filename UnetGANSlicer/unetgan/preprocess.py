"""Preprocessing as in the paper, with its exact inverse.

Per volume: intensities to [0, 1] by the 1st and 99th percentiles (robust to the
vendor's arbitrary units and to a few bright vessels; the per-volume choice keeps
one slice's shading from deciding another's scale). Per slice: in-plane resampling
to 1.5 mm, centre crop/pad to 192 x 192. `SliceGrid.restore` maps network outputs
back onto the original grid, so masks overlay the original image exactly.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

TARGET_SPACING_MM = 1.5
CROP_SIZE = 192
PERCENTILES = (1.0, 99.0)
SLICE_SPACING_MM = (0.5, 40.0)  # between slice centres: thin 3D stacks to thick slices with gaps


def sorted_quantiles(ordered, q) -> np.ndarray:
    """np.quantile's default (linear) quantiles of an already sorted 1D array (or anything indexed by rank
    with a size, as histogram.CountedOrder): one sort serves every quantile (np.quantile with hundreds of
    quantiles partitions ~15x slower than sorting)."""
    position = np.asarray(q, dtype=np.float64) * (ordered.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, ordered.size - 1)
    fraction = position - below
    return ordered[below] + fraction * (ordered[above].astype(np.float64) - ordered[below])


def intensity_window(volume: np.ndarray, ordered: np.ndarray | None = None) -> tuple[float, float]:
    """The 1st and 99th percentiles that normalisation maps to 0 and 1, after checking the volume is usable."""
    volume = np.asarray(volume, dtype=np.float32)
    finite = np.isfinite(volume)
    if not finite.all():
        raise InputError(f"the image contains NaN or infinite values ({finite.size - int(finite.sum())} voxels); "
                         "expected finite intensities (is the file damaged?)")
    if ordered is None:
        low, high = np.percentile(volume, PERCENTILES)
    else:
        low, high = sorted_quantiles(ordered, np.array(PERCENTILES) / 100.0)
    if high - low <= 1e-6 * max(1.0, abs(high)):
        raise InputError("the image is constant (or nearly so): nothing to segment; expected an MR image with contrast")
    return float(low), float(high)


def normalise_intensity(volume: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Scale to [0, 1] by the volume's 1st-99th percentiles (or a given window), clipped."""
    volume = np.asarray(volume, dtype=np.float32)
    low, high = window or intensity_window(volume)
    return np.clip((volume - low) / (high - low), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class SliceGrid:
    """How one in-plane grid maps to the network's 192 x 192 grid at 1.5 mm, and back."""

    shape: tuple[int, int]  # original (rows, cols)
    resampled: tuple[int, int]  # (rows, cols) at 1.5 mm
    crop: int = CROP_SIZE

    @classmethod
    def for_spacing(cls, shape, spacing_xy, target=TARGET_SPACING_MM, crop=CROP_SIZE) -> "SliceGrid":
        sx, sy = float(spacing_xy[0]), float(spacing_xy[1])
        rows = max(1, int(round(shape[0] * sy / target)))
        cols = max(1, int(round(shape[1] * sx / target)))
        return cls((int(shape[0]), int(shape[1])), (rows, cols), crop)

    def _offsets(self, length: int) -> tuple[int, int]:
        """(crop start in the resampled image, paste start in the crop) for one axis, centred."""
        if length >= self.crop:
            return (length - self.crop) // 2, 0
        return 0, (self.crop - length) // 2

    def forward(self, slices: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """(N, C, rows, cols) -> (N, C, 192, 192); padding is 0."""
        resized = F.interpolate(slices, size=self.resampled, mode=mode, align_corners=False if mode != "nearest" else None,
                                antialias=mode == "bilinear")
        out = resized.new_zeros(resized.shape[:2] + (self.crop, self.crop))
        (r0, pr), (c0, pc) = self._offsets(self.resampled[0]), self._offsets(self.resampled[1])
        h, w = min(self.crop, self.resampled[0]), min(self.crop, self.resampled[1])
        out[:, :, pr : pr + h, pc : pc + w] = resized[:, :, r0 : r0 + h, c0 : c0 + w]
        return out

    def restore(self, cropped: torch.Tensor, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
        """(N, C, 192, 192) -> (N, C, rows, cols) on the original grid; `fill` (per channel) outside the crop."""
        n, c = cropped.shape[:2]
        canvas = cropped.new_empty((n, c) + self.resampled)
        canvas[:] = torch.as_tensor(fill, dtype=cropped.dtype).reshape(1, -1, 1, 1) if not isinstance(fill, float) else fill
        (r0, pr), (c0, pc) = self._offsets(self.resampled[0]), self._offsets(self.resampled[1])
        h, w = min(self.crop, self.resampled[0]), min(self.crop, self.resampled[1])
        canvas[:, :, r0 : r0 + h, c0 : c0 + w] = cropped[:, :, pr : pr + h, pc : pc + w]
        return F.interpolate(canvas, size=self.shape, mode="bilinear", align_corners=False)

    def restore_window(self, part: torch.Tensor, rows: slice, cols: slice,
                       fill: torch.Tensor) -> tuple[tuple[slice, slice], torch.Tensor]:
        """restore() of a crop that is `fill` everywhere but in rows x cols of the 192 x 192 grid (part:
        (N, C, rows, cols)), computed only where the part reaches: ((rows, cols) on the original grid, values
        there). Outside that window restore() gives `fill` (interpolating a constant), so nothing else is needed.

        The same bilinear sums as restore() (source index and weights as torch's align_corners=False
        computes them, width first then height), on a window about the box's size instead of the field."""
        fill = torch.as_tensor(fill, dtype=part.dtype).reshape(1, -1, 1, 1)
        r, c = self._window_taps(0, rows), self._window_taps(1, cols)
        if r is None or c is None:  # the part is outside the field
            return (slice(0, 0), slice(0, 0)), part.new_empty(part.shape[:2] + (0, 0))
        # a local canvas over the source rows/cols the window reads: fill, with the part pasted in
        canvas = fill.repeat(part.shape[0], 1, r.high - r.low, c.high - c.low)
        (r0, pr), (c0, pc) = self._offsets(self.resampled[0]), self._offsets(self.resampled[1])
        src_r, src_c = rows.start - pr + r0, cols.start - pc + c0  # the part's first row/col on the canvas
        top, left = max(src_r, r.low), max(src_c, c.low)
        bottom, right = min(src_r + part.shape[2], r.high), min(src_c + part.shape[3], c.high)
        canvas[:, :, top - r.low : bottom - r.low, left - c.low : right - c.low] = \
            part[:, :, top - src_r : bottom - src_r, left - src_c : right - src_c]
        across = canvas[..., c.i0 - c.low] * c.w0 + canvas[..., c.i1 - c.low] * c.w1
        return (r.window, c.window), across[:, :, r.i0 - r.low] * r.w0[:, None] + across[:, :, r.i1 - r.low] * r.w1[:, None]

    def _window_taps(self, axis: int, part: slice) -> "_WindowTaps | None":
        """The output indices on the original grid whose bilinear taps reach the part (a slice of the 192
        grid) on this axis, with their taps; None when none does."""
        i0, i1, w0, w1 = _bilinear_taps(self.resampled[axis], self.shape[axis])
        start, pad = self._offsets(self.resampled[axis])
        length = min(self.crop, self.resampled[axis])
        # the part on the canvas, clipped to what restore() pastes from the crop
        low = max(part.start, pad) - pad + start
        high = min(part.stop, pad + length) - pad + start
        reached = np.nonzero(((i0 >= low) & (i0 < high)) | ((i1 >= low) & (i1 < high)))[0]
        if reached.size == 0:
            return None
        window = slice(int(reached[0]), int(reached[-1]) + 1)
        i0, i1 = torch.from_numpy(i0[window]), torch.from_numpy(i1[window])
        return _WindowTaps(window, int(i0.min()), int(i1.max()) + 1, i0, i1, torch.from_numpy(w0[window]),
                           torch.from_numpy(w1[window]))


class _WindowTaps(NamedTuple):
    """One axis of a windowed restore: output indices, the canvas range [low, high) they read, their taps."""

    window: slice
    low: int
    high: int
    i0: torch.Tensor
    i1: torch.Tensor
    w0: torch.Tensor
    w1: torch.Tensor


@functools.lru_cache(maxsize=32)
def _bilinear_taps(in_size: int, out_size: int):
    """Per output index: the two source indices and weights of torch's bilinear resize (align_corners=False,
    no antialias), computed as its CPU kernel does (area_pixel_compute_source_index, guard_index_and_lambda)."""
    scale = np.float32(in_size) / np.float32(out_size)
    real = np.maximum((scale * (np.arange(out_size, dtype=np.float64) + 0.5) - 0.5).astype(np.float32), np.float32(0))
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    w1 = np.clip(real - i0.astype(np.float32), 0, 1).astype(np.float32)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, (np.float32(1) - w1).astype(np.float32), w1


def check_volume(volume: np.ndarray, spacing) -> None:
    """Reject what the model cannot sensibly process, with what is expected."""
    if volume.ndim != 3:
        raise InputError(f"expected a 3D volume (slices, rows, cols), got shape {volume.shape}")
    if min(volume.shape[1:]) < 32:
        raise InputError(f"slices of {volume.shape[1]}x{volume.shape[2]} pixels are too small for a short-axis cine; "
                         "expected at least 32 x 32")
    sx, sy = float(spacing[0]), float(spacing[1])
    if not (0.3 <= sx <= 5.0 and 0.3 <= sy <= 5.0):
        raise InputError(f"in-plane pixel spacing {sx:g} x {sy:g} mm is outside 0.3-5 mm expected for cardiac cine MRI")
    if max(sx, sy) / min(sx, sy) > 3.0:
        raise InputError(f"in-plane pixels are too anisotropic ({sx:g} x {sy:g} mm); expected a ratio of at most 3")
    if len(spacing) > 2 and volume.shape[0] > 1 and not (SLICE_SPACING_MM[0] <= float(spacing[2]) <= SLICE_SPACING_MM[1]):
        # volumes in mL scale with it; one slice has no spacing that matters for the networks
        raise InputError(f"slice spacing {float(spacing[2]):g} mm is outside {SLICE_SPACING_MM[0]:g}-{SLICE_SPACING_MM[1]:g} mm "
                         "expected for a short-axis stack")


def prepare_volume(volume: np.ndarray, spacing) -> tuple[torch.Tensor, SliceGrid]:
    """A 3D volume (Z, Y, X) -> normalised network slices (Z, 1, 192, 192) and the grid to map back."""
    slices, grid, _ = prepare_volume_keeping_input(volume, spacing)
    return slices, grid


def prepare_volume_keeping_input(volume: np.ndarray, spacing) -> tuple[torch.Tensor, SliceGrid, np.ndarray]:
    """prepare_volume, and the normalised volume on its own grid (for a caller that shows it: one
    normalisation, not two)."""
    check_volume(volume, spacing)
    grid = SliceGrid.for_spacing(volume.shape[1:], spacing)
    normalised = normalise_intensity(volume)
    return grid.forward(torch.from_numpy(normalised)[:, None]).clamp_(0.0, 1.0), grid, normalised


def with_neighbours(slices: torch.Tensor, context: int) -> torch.Tensor:
    """Network slices of one volume (Z, 1, H, W) -> (Z, 1 + 2 context, H, W): each slice with the `context`
    slices on either side as channels, in stack order (channel `context` is the slice itself); the end slices
    repeat themselves where the stack stops, so an end slice is not told apart by a blank neighbour."""
    if context <= 0:
        return slices
    index = torch.arange(slices.shape[0])
    taps = [index.add(offset).clamp_(0, slices.shape[0] - 1) for offset in range(-context, context + 1)]
    return torch.cat([slices[tap] for tap in taps], dim=1)


def prepare_labels(labels: np.ndarray, grid: SliceGrid, n_classes: int = 3) -> torch.Tensor:
    """Labels (Z, Y, X) -> (Z, 192, 192) int64, resampled as one-hot maps then argmax (smooth edges)."""
    onehot = F.one_hot(torch.from_numpy(labels.astype(np.int64)).clamp_(0, n_classes - 1), n_classes)
    onehot = onehot.permute(0, 3, 1, 2).float()
    resampled = grid.forward(onehot)
    resampled[:, 0] += (resampled.sum(1) < 0.5).float()  # padding is background
    return resampled.argmax(1)
