"""The segmentation methods compared in the results: which model, which preprocessing.

clean / noisy / augment: the LV-Unet trained with that augmentation, on the raw image.
histmatch: the clean LV-Unet on the image histogram-matched to the source vendor.
unetgan: the image translated to the source look by an adapter, segmented by the LV-Unet
the adapter was trained against (its metadata names it; older adapters: the clean one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .histogram import load_reference, match_to_reference
from .inference import FrameResult, adapt_and_segment_frame
from .registry import MODELS_DIR, load_adapter, load_lvunet, paired_segmenter

METHODS = ("clean", "noisy", "augment", "histmatch", "unetgan")
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
        if self.reference is not None:
            volume = match_to_reference(volume, self.reference)
        return adapt_and_segment_frame(volume, spacing, self.model, self.generator, self.device)


def make_segmenter(method: str, model=None, adapter=None, histogram=None, device="cpu") -> Segmenter:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    default_model = f"lvunet-{method}" if method in ("clean", "noisy", "augment") else "lvunet-clean"
    if method == "unetgan":
        if adapter is None:
            raise InputError("--method unetgan needs --adapter (a target vendor name or an adapter file)")
        generator = load_adapter(adapter)
        network = load_lvunet(model or paired_segmenter(generator) or default_model)
        return Segmenter(method, network, generator=generator, device=device)
    network = load_lvunet(model or default_model)
    if method == "histmatch":
        path = histogram or SOURCE_HISTOGRAM
        try:
            reference = load_reference(path)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"cannot read the source histogram {path}: {err}") from None
        return Segmenter(method, network, reference=reference, device=device)
    return Segmenter(method, network, device=device)
