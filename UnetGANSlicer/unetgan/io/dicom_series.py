"""What a DICOM series is, from its headers alone: how many images, slice positions and phases, whether it is a
localiser, and what its description hints (read by :mod:`.dicom_study`, which chooses the short-axis cine, and
:mod:`.dicom_stacks`, which joins a stack exported as one series per slice position)."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# words in a series description: short-axis cine (+1) or another view (-1)
SHORT_AXIS_WORDS = re.compile(r"(^|[^a-z])(sa|sax|sa[ _-]?stack|short[ _-]?axis|kurzachse)([^a-z]|$)", re.IGNORECASE)
OTHER_VIEW_WORDS = re.compile(r"(^|[^a-z0-9])([234] ?ch|lax|lvot|long[ _-]?axis|loc|localiz|localis|scout|survey|"
                              r"tra|cor|sag|flow|lge|psir|t1 ?map|t2 ?map)([^a-z]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class SeriesSummary:
    """What a series is, from its headers alone."""

    uid: str
    number: str
    description: str
    images: int
    positions: int  # distinct ImagePositionPatient (0: none usable)
    phases: int  # the most images at one position
    localizer: bool
    members: tuple = ()  # a stack joined from one series per slice position: the summaries of its series

    @property
    def is_cine(self) -> bool:
        return self.phases > 1

    @property
    def hint(self) -> int:
        if SHORT_AXIS_WORDS.search(self.description):
            return 1
        return -1 if OTHER_VIEW_WORDS.search(self.description) else 0

    @property
    def unfit_reason(self) -> str | None:
        """Why this series cannot be the short-axis cine, or None if it can."""
        if self.localizer:
            return "a localiser"
        if self.positions == 1:
            return "one slice position: a long-axis or single-slice view"
        return None

    def shown(self, with_uid: bool = True) -> str:
        if self.members:
            numbers = ", ".join(m.number or "?" for m in self.members)
            name = f"{len(self.members)} series joined ({numbers})" + (f" '{self.description}'" if self.description else "")
        else:
            name = f"series {self.number or '?'}" + (f" '{self.description}'" if self.description else "")
        layout = (f"{self.phases} phases x {self.positions} slices" if self.positions > 1 and self.is_cine
                  else f"{self.images} image{'s' if self.images != 1 else ''}")
        if not with_uid:
            uid = ""
        elif self.members:  # the series' own UIDs, first and last: --series takes them all, comma-separated
            uid = f", UIDs {self.members[0].uid} ... {self.members[-1].uid}"
        else:
            uid = f", UID {self.uid or '?'}"
        return f"{name} ({layout}{uid})"


def _position(frame) -> tuple | None:
    try:
        position = tuple(round(float(v), 1) for v in frame.get("ImagePositionPatient"))
    except (AttributeError, TypeError, ValueError):
        return None
    return position if len(position) == 3 else None


def summarise(series_uid: str, frames) -> SeriesSummary:
    first = frames[0].ds
    positions = Counter(p for p in (_position(f) for f in frames) if p is not None)
    image_types = {str(v).upper() for ds in {id(f.ds): f.ds for f in frames}.values()
                   for v in (getattr(ds, "ImageType", None) or [])}
    description = str(getattr(first, "SeriesDescription", "") or getattr(first, "ProtocolName", "") or "").strip()
    return SeriesSummary(uid=series_uid, number=str(getattr(first, "SeriesNumber", "") or ""), description=description,
                         images=len(frames), positions=len(positions), phases=max(positions.values(), default=1),
                         localizer="LOCALIZER" in image_types)
