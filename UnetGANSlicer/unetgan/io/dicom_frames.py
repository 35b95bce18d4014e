"""Each image of a DICOM series as one record: a single-frame file, or one frame of a multi-frame file.

An Enhanced (or Legacy Converted Enhanced) MR image holds a whole cine, or part of it, in one
file: what a single-frame file keeps at its top level (ImagePositionPatient, ImageOrientationPatient,
PixelSpacing, TriggerTime, RescaleSlope ...) it keeps per frame in the Per-Frame Functional Groups
Sequence, or once for all frames in the Shared Functional Groups Sequence, each inside its
functional group macro (Plane Position, Plane Orientation, Pixel Measures, Cardiac Synchronization,
Frame Content, Pixel Value Transformation; a legacy conversion keeps the rest in its "Unassigned
Converted Attributes"). :class:`Frame.get` looks a keyword up there, per-frame group first, then the
shared group, then the top level, so that the reader treats both kinds of file alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

# where an Enhanced MR keeps what a single-frame image calls TriggerTime
ALIASES = {"TriggerTime": ("TriggerTime", "NominalCardiacTriggerDelayTime")}


@dataclass(frozen=True)
class Frame:
    """One image: the file, its header (without pixels) and, in a multi-frame file, its frame number."""

    path: Path
    ds: Dataset
    number: int | None = None  # 1-based frame number in a multi-frame file; None: a single-frame file

    @property
    def name(self) -> str:
        """How messages name this image: the file, and the frame in a multi-frame file."""
        return self.path.name if self.number is None else f"{self.path.name} frame {self.number}"

    @property
    def sop_uid(self) -> str:
        return str(getattr(self.ds, "SOPInstanceUID", "") or "")

    @property
    def series_uid(self) -> str:
        return str(getattr(self.ds, "SeriesInstanceUID", "") or "")

    def get(self, keyword: str, default=None):
        """The value of `keyword` for this frame: per-frame functional group, shared group, top level."""
        names = ALIASES.get(keyword, (keyword,))
        if self.number is not None:
            for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
                sequence = getattr(self.ds, groups, None)
                if not sequence:
                    continue
                item = sequence[self.number - 1] if groups.startswith("PerFrame") else sequence[0]
                found = _in_group(item, names)
                if found is not None:
                    return found
        for name in names:
            value = getattr(self.ds, name, None)
            if value is not None and value != "":
                return value
        return default


def _in_group(item: Dataset, names: tuple[str, ...]):
    """A keyword inside one functional group item: each of its macros is a one-item sequence."""
    for element in item:
        if element.VR != "SQ" or not element.value:
            continue
        macro = element.value[0]
        for name in names:
            value = getattr(macro, name, None)
            if value is not None and value != "":
                return value
    return None


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(getattr(ds, "NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def is_multiframe(ds: Dataset) -> bool:
    return frame_count(ds) > 1 or "PerFrameFunctionalGroupsSequence" in ds


def frames_of(path: Path, ds: Dataset) -> list[Frame]:
    """The images of one file: itself, or each frame of a multi-frame file."""
    if not is_multiframe(ds):
        return [Frame(path, ds)]
    return [Frame(path, ds, number) for number in range(1, frame_count(ds) + 1)]
