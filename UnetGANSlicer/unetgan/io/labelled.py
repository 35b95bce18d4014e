"""What a dataset row is (ManifestItem) and what loading it gives (LabelledVolume).

Kept apart from the readers (io/manifest.py for CSV rows, io/sunnybrook.py for contour
folders), which both use them, so that manifest -> sunnybrook is the only import between those two.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .geometry import ImageData


@dataclass(frozen=True)
class ManifestItem:
    subject: str
    vendor: str
    phase: str
    image: Path
    label: Path | None
    split: str

    @property
    def is_cine(self) -> bool:
        return self.phase.lower() == "cine"


@dataclass
class LabelledVolume:
    """One 3D volume with reference labels; `valid` marks the slices where each structure was labelled."""

    subject: str
    vendor: str
    phase: str
    image: ImageData
    labels: np.ndarray | None
    valid: dict[str, np.ndarray] | None = None  # structure name -> bool per slice; None: all slices
