"""Segmentation, translation to the source vendor's look, and both together, on arrays.

Everything here works frame by frame (a frame is one 3D volume), so memory stays
bounded by one frame whatever the length of the cine.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from .errors import Cancelled, InputError
from .io.images import Geometry
from .histogram import match_to_reference
from .preprocess import normalise_intensity, prepare_volume, PERCENTILES

BACKGROUND_FILL = (1.0, 0.0, 0.0)  # class probabilities outside the network's crop


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError("a GPU was requested but torch sees none; use --device cpu")
    return torch.device("cuda" if device == "gpu" else device)


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


@torch.inference_mode()
def _run_batched(network: torch.nn.Module, slices: torch.Tensor, device, bf16: bool, batch: int) -> torch.Tensor:
    outputs = []
    for start in range(0, slices.shape[0], batch):
        chunk = slices[start : start + batch].to(device).contiguous(memory_format=torch.channels_last)
        with _autocast(device, bf16):
            outputs.append(network(chunk).float().cpu())
    return torch.cat(outputs)


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """Keep the largest 3D connected LV (blood pool + myocardium); stray islands are false positives."""
    components, count = ndimage.label(labels > 0)
    if count <= 1:
        return labels
    sizes = ndimage.sum_labels(np.ones_like(components), components, index=range(1, count + 1))
    return np.where(components == 1 + int(np.argmax(sizes)), labels, 0).astype(labels.dtype)


@dataclass
class FrameResult:
    labels: np.ndarray  # (Z, Y, X) uint8
    confidence: float  # mean max-probability over predicted LV pixels
    translated: np.ndarray | None = None  # (Z, Y, X) float32, input intensity units


def segment_slices(model, slices: torch.Tensor, grid, device, bf16=False, batch=32, postprocess=True):
    logits = _run_batched(model, slices, device, bf16, batch)
    probabilities = grid.restore(torch.softmax(logits, 1), fill=torch.tensor(BACKGROUND_FILL))
    labels = probabilities.argmax(1).numpy().astype(np.uint8)
    if postprocess:
        labels = keep_largest_component(labels)
    top = probabilities.max(1).values.numpy()
    confidence = float(top[labels > 0].mean()) if (labels > 0).any() else 0.0
    return labels, confidence


def segment(volume: np.ndarray, spacing, model, device="cpu", bf16=False, batch=32, postprocess=True) -> FrameResult:
    """Labels (1 blood pool, 2 myocardium) of a 3D volume (Z, Y, X), on its own grid."""
    device = pick_device(device) if isinstance(device, str) else device
    slices, grid = prepare_volume(volume, spacing)
    labels, confidence = segment_slices(model, slices, grid, device, bf16, batch, postprocess)
    return FrameResult(labels, confidence)


def translate_slices(generator, slices: torch.Tensor, device, bf16=False, batch=32) -> torch.Tensor:
    """Network slices in [0, 1] -> the source vendor's look, in [0, 1] (the generator works in [-1, 1])."""
    translated = _run_batched(generator, slices * 2 - 1, device, bf16, batch)
    return ((translated + 1) / 2).clamp_(0, 1)


def translate_to_source(volume: np.ndarray, spacing, generator, device="cpu", bf16=False, batch=32) -> np.ndarray:
    """A target-vendor volume as the source vendor would show it, on the input grid and intensity range."""
    return adapt_and_segment_frame(volume, spacing, None, generator, device, bf16, batch).translated


def adapter_input(volume: np.ndarray, generator) -> np.ndarray:
    """What the adapter was trained on: the raw volume, or the volume histogram-matched to the source first
    (adapters trained with `--histogram-match` carry the source quantile function in their metadata)."""
    reference = (getattr(generator, "metadata", None) or {}).get("histogram_reference") if generator is not None else None
    return volume if reference is None else match_to_reference(volume, np.asarray(reference, dtype=np.float64))


def adapt_and_segment_frame(volume, spacing, model, generator, device="cpu", bf16=False, batch=32, postprocess=True) -> FrameResult:
    device = pick_device(device) if isinstance(device, str) else device
    slices, grid = prepare_volume(adapter_input(volume, generator), spacing)
    if generator is not None:
        slices_source = translate_slices(generator, slices, device, bf16, batch)
    else:
        slices_source = slices
    result = FrameResult(np.zeros(volume.shape, np.uint8), 0.0)
    if model is not None:
        result.labels, result.confidence = segment_slices(model, slices_source, grid, device, bf16, batch, postprocess)
    result.translated = _to_input_look(volume, slices_source, grid, translated=generator is not None)
    return result


def _to_input_look(volume, slices_source, grid, translated: bool) -> np.ndarray:
    """The translated crop back on the input grid, in the input's intensity range; the original outside the crop."""
    if not translated:
        return np.asarray(volume, np.float32).copy()
    low, high = np.percentile(np.asarray(volume, np.float32), PERCENTILES)
    pieces = torch.cat([slices_source, torch.ones_like(slices_source)], 1)
    restored = grid.restore(pieces, fill=0.0)
    image, coverage = restored[:, 0].numpy(), restored[:, 1].clamp(0, 1).numpy()
    original = normalise_intensity(volume)
    blended = coverage * image + (1 - coverage) * original
    return (blended * (high - low) + low).astype(np.float32)


@dataclass
class CineResult:
    labels: np.ndarray  # (T, Z, Y, X) uint8
    translated: np.ndarray  # (T, Z, Y, X) float32
    confidence: list[float] = field(default_factory=list)


def adapt_and_segment(frames: np.ndarray, geometry: Geometry, model, generator=None, device="cpu", bf16=False,
                      batch=32, progress: Callable[[int, int], None] | None = None,
                      cancel: Callable[[], bool] | None = None) -> CineResult:
    """Translate (when a generator is given) and segment every frame of a cine (T, Z, Y, X)."""
    if frames.ndim != 4:
        raise InputError(f"expected frames (T, Z, Y, X), got shape {frames.shape}")
    device = pick_device(device) if isinstance(device, str) else device
    labels = np.zeros(frames.shape, np.uint8)
    translated = np.zeros(frames.shape, np.float32)
    confidence = []
    spacing = geometry.spacing
    for t in range(frames.shape[0]):
        if cancel is not None and cancel():
            raise Cancelled("cancelled by the user")
        frame = adapt_and_segment_frame(frames[t], spacing, model, generator, device, bf16, batch)
        labels[t], translated[t] = frame.labels, frame.translated
        confidence.append(frame.confidence)
        if progress is not None:
            progress(t + 1, frames.shape[0])
    return CineResult(labels, translated, confidence)
