"""The segmentation methods compared in the results: which model, which preprocessing.

default: exactly what `unetgan segment` does with no options (the registry's default LV-Unet).
clean / noisy / augment / robust: the LV-Unet trained with that augmentation, on the raw image.
histmatch: the clean LV-Unet (or --model) on the image histogram-matched to the source vendor.
unetgan: exactly what `unetgan adapt-segment --adapter A` does: the image translated to the source
look by the adapter, segmented by the LV-Unet the adapter was trained against.

Every method runs the product's own cine path (`inference.adapt_and_segment`: heart box on), so a
score is the score of what a user gets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .histogram import load_reference, match_to_reference
from .inference import CineResult, FrameResult, adapt_and_segment
from .io.geometry import Geometry
from .registry import MODELS_DIR, ModelCache, adapter_metadata, find_model, paired_segmenter
from .networks.lvunet import with_tta
from .tta import DEFAULT_TTA
from .runtime import resolve_runtime

METHODS = ("default", "clean", "noisy", "augment", "robust", "histmatch", "unetgan")
SOURCE_HISTOGRAM = MODELS_DIR / "source_histogram.json"


@dataclass
class Segmenter:
    """Segments one 3D volume (Z, Y, X) with the chosen method."""

    method: str
    model: object
    generator: object = None
    reference: np.ndarray | None = None
    device: str = "cpu"

    def __call__(self, volume: np.ndarray, spacing) -> FrameResult:
        """One 3D volume (Z, Y, X), run as a one-frame study."""
        result = self.study(volume[None], Geometry(tuple(spacing)))
        return FrameResult(result.labels[0], result.confidence[0], result.translated[0])

    def study(self, frames: np.ndarray, geometry: Geometry) -> CineResult:
        """A whole study (T, Z, Y, X), as the command line runs it."""
        if self.reference is not None:  # per frame, as an adapter's histogram matching is done
            frames = np.stack([match_to_reference(frame, self.reference) for frame in frames])
        return adapt_and_segment(frames, geometry, self.model, self.generator, self.device)


def segmenter_name(method: str, model=None, paired: str | None = None) -> str | None:
    """The LV-Unet a method segments with: `model` if given; else the adapter's paired one (unetgan), the
    method's own (clean, noisy, augment, robust), the clean one (histmatch, unetgan without a pairing), or the
    registry's default (default: None)."""
    if model is not None or method == "default":
        return model
    if method == "unetgan" and paired:
        return paired
    return f"lvunet-{method}" if method in ("clean", "noisy", "augment", "robust") else "lvunet-clean"


def weight_files(method: str, model=None, adapter=None) -> dict:
    """The SHA256 of the weight files a method runs with these options, from the registry and the adapter's
    metadata, without loading a network: what a stored result was measured with."""
    from .weights import sha256_of

    adapter_entry = find_model(adapter, "adapter") if method == "unetgan" and adapter is not None else None
    paired = adapter_metadata(adapter_entry).get("segmenter") if adapter_entry else None
    segmenter = find_model(segmenter_name(method, model, paired), "segmenter")
    return {"segmenter": sha256_of(segmenter.file), "adapter": sha256_of(adapter_entry.file) if adapter_entry else None}


def make_segmenter(method: str, model=None, adapter=None, histogram=None, device="cpu", runtime="auto",
                   tta: str = DEFAULT_TTA) -> Segmenter:
    """runtime: "auto", "torch" or "onnx" (runtime.py), as the command line's --runtime; tta as its --tta."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    runtime = resolve_runtime(runtime, device)
    cache = ModelCache()

    def lvunet(name):
        return with_tta(cache.lvunet(name, runtime), tta)

    if method == "unetgan":
        if adapter is None:
            raise InputError("--method unetgan needs --adapter (a target vendor name or an adapter file)")
        generator = cache.adapter(adapter, runtime)
        network = lvunet(segmenter_name(method, model, paired_segmenter(generator)))
        return Segmenter(method, network, generator=generator, device=device)
    network = lvunet(segmenter_name(method, model))
    if method == "default":
        return Segmenter(method, network, device=device)
    if method == "histmatch":
        path = histogram or SOURCE_HISTOGRAM
        try:
            reference = load_reference(path)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"cannot read the source histogram {path}: {err}") from None
        return Segmenter(method, network, reference=reference, device=device)
    return Segmenter(method, network, device=device)
