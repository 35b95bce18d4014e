"""`--adapter auto`: which adapter (or none) suits a study, from its scanner vendor or, failing that, from the images.

1. The DICOM Manufacturer (0008,0070) names the vendor; scanners write it many ways
   ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems", "Philips Healthcare"...),
   so it is matched on words, not compared as a string.
2. The vendor the LV-Unet was trained on needs no adapter; a vendor with an adapter in the
   registry gets it (the same one `--adapter VENDOR` picks).
3. Any other vendor (or no Manufacturer at all) gets the candidate (no adapter, or one of
   the registry's adapters) under which the segmenter copes best with a few mid-ventricular
   slices, by the label-free criterion that chose the adapters' checkpoints in training
   (criterion.py); with a `WARNING:`, because a criterion is not a validation.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .io.geometry import ImageData
from .registry import ModelEntry, find_model, read_registry, registry_file

# vendor -> words of a Manufacturer string that name it (lower case, matched as whole words)
VENDOR_WORDS = {
    "Siemens": ("siemens",),
    "GE": ("ge", "gehc", "general electric", "ge medical systems", "ge healthcare"),
    "Philips": ("philips",),
    "Canon": ("canon", "toshiba"),
    "Hitachi": ("hitachi", "fujifilm"),
    "United Imaging": ("united imaging", "uih"),
}
SCORING_SLICES = 4  # mid-ventricular slices of the first frame: enough to tell a lost segmenter from a working one


def vendor_of(manufacturer: str | None) -> str | None:
    """The vendor a Manufacturer string names, or None (empty, or a vendor not in VENDOR_WORDS)."""
    words = " " + re.sub(r"[^a-z0-9]+", " ", str(manufacturer or "").lower()).strip() + " "
    for vendor, names in VENDOR_WORDS.items():
        if any(f" {name} " in words for name in names):
            return vendor
    return None


@dataclass(frozen=True)
class AdapterChoice:
    entry: ModelEntry | None  # None: no adapter
    reason: str  # one line, printed and kept with the results
    warning: str | None = None  # set when the choice rests on the images, not on the vendor
    scores: dict = field(default_factory=dict)  # candidate name -> label-free score (image-based choices only)

    @property
    def adapter(self) -> str:
        """What `--adapter` takes: a registry name, or "none"."""
        return "none" if self.entry is None else self.entry.name


def _source_vendors(entries) -> set[str]:
    return {e.source_vendor.lower() for e in entries if e.source_vendor}


def _candidates(entries) -> list[ModelEntry | None]:
    """No adapter, and the registry's adapter for each target vendor (the one `--adapter VENDOR` picks)."""
    vendors = list(dict.fromkeys(e.target_vendor for e in entries if e.kind == "adapter" and e.target_vendor))
    return [None] + [find_model(v, "adapter") for v in vendors]


def _mid_slices(image: ImageData) -> tuple[np.ndarray, tuple]:
    volume = image.frames[0]
    middle = volume.shape[0] // 2
    start = max(0, middle - SCORING_SLICES // 2)
    return volume[start : start + SCORING_SLICES], image.geometry.spacing


def score_candidates(image: ImageData, candidates: list[ModelEntry | None], device="cpu") -> dict[str, float]:
    """Label-free score of each candidate on a few mid-ventricular slices (higher: the segmenter copes better).

    Each candidate is scored with the segmenter it would run with (an adapter's paired LV-Unet, else the
    default one). The criterion's area term needs a reference LV area: the candidates' median, so that a
    candidate that erases or inflates the heart, compared to the others, scores low."""
    import torch

    from .inference import adapter_slices, pick_device, translate_slices
    from .registry import load_adapter, load_lvunet, paired_segmenter
    from .criterion import foreground_area, label_free_criterion

    device = pick_device(device) if isinstance(device, str) else device
    volume, spacing = _mid_slices(image)
    runs = []
    for entry in candidates:
        generator = None if entry is None else load_adapter(entry.name).to(device)
        segmenter = load_lvunet(paired_segmenter(generator)).to(device)
        slices = adapter_slices(volume, spacing, generator)
        if generator is not None:
            slices = translate_slices(generator, slices, device)
        with torch.inference_mode():
            runs.append((entry, segmenter, slices.to(device), foreground_area(segmenter, slices.to(device))))
    reference = float(np.median([area for *_, area in runs]))
    return {("none" if entry is None else entry.name): label_free_criterion(segmenter, slices, reference)["score"]
            for entry, segmenter, slices, _ in runs}


def choose_adapter(image: ImageData | str | os.PathLike, manufacturer: str | None = None, device="cpu") -> AdapterChoice:
    """The adapter for this study (an image as read, or its path: a DICOM folder or an image file): from
    `manufacturer` (default: the DICOM Manufacturer the reader kept in `image.meta`), else from the images
    (see the module's description)."""
    if not isinstance(image, ImageData):
        from .io.images import read_image

        image = read_image(image)
    manufacturer = manufacturer if manufacturer is not None else image.meta.get("manufacturer")
    entries = read_registry(registry_file())  # the shipped adapters only, never a research one
    vendor = vendor_of(manufacturer)
    said = f"Manufacturer {manufacturer!r}" if manufacturer else "no Manufacturer (not a DICOM input)"
    if vendor is not None and vendor.lower() in _source_vendors(entries):
        return AdapterChoice(None, f"no adapter: {said} is {vendor}, the vendor the LV-Unet was trained on")
    adapters = [e for e in entries if e.kind == "adapter" and (e.target_vendor or "").lower() == (vendor or "").lower()]
    if vendor is not None and adapters:
        entry = find_model(vendor, "adapter")
        return AdapterChoice(entry, f"adapter {entry.name}: {said} is {vendor}")
    candidates = _candidates(entries)
    if len(candidates) == 1:
        return AdapterChoice(None, f"no adapter: {said}, and the registry has no adapter",
                             warning=f"{said}: no adapter for this scanner in the registry; segmented without one")
    try:
        scores = score_candidates(image, candidates, device)
    except InputError as err:
        raise InputError(f"cannot choose an adapter from the images ({err}); pass --adapter") from None
    best = max(scores, key=scores.get)
    entry = None if best == "none" else next(c for c in candidates if c is not None and c.name == best)
    shown = ", ".join(f"{name} {score:.2f}" for name, score in sorted(scores.items(), key=lambda kv: -kv[1]))
    unknown = f"{said} names {vendor}," if vendor else f"{said} names no vendor we know,"
    reason = f"{'no adapter' if entry is None else 'adapter ' + entry.name}: {unknown} chosen by the label-free check ({shown})"
    warning = (f"{unknown} with no adapter of its own: chose {'no adapter' if entry is None else entry.name} as the closest "
               f"by the label-free check on {SCORING_SLICES} mid-ventricular slices ({shown}); check the contours")
    return AdapterChoice(entry, reason, warning, scores)
