"""Finding the short-axis cine among the series of a DICOM study.

A scanner exports a whole study: localisers, long-axis cines (2, 3, 4 chamber), the
short-axis cine, perhaps flow or late-enhancement series. The short-axis cine is the
series that images several slice positions, each at several cardiac phases. Localisers
(ImageType LOCALIZER) and single-position cines (long-axis views) are passed over; the
series description (SeriesDescription, else ProtocolName) is only a hint that ranks
series that fit equally otherwise. Two series that still fit equally are refused, with
their UIDs, so that the user chooses one (`--series UID`): guessing would measure the
wrong acquisition without anyone noticing.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

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
        name = f"series {self.number or '?'}" + (f" '{self.description}'" if self.description else "")
        layout = (f"{self.phases} phases x {self.positions} slices" if self.positions > 1 and self.is_cine
                  else f"{self.images} image{'s' if self.images != 1 else ''}")
        uid = f", UID {self.uid or '?'}" if with_uid else ""
        return f"{name} ({layout}{uid})"


def _position(ds) -> tuple | None:
    try:
        position = tuple(round(float(v), 1) for v in ds.ImagePositionPatient)
    except (AttributeError, TypeError, ValueError):
        return None
    return position if len(position) == 3 else None


def summarise(series_uid: str, headers) -> SeriesSummary:
    first = headers[0][1]
    positions = Counter(p for p in (_position(ds) for _, ds in headers) if p is not None)
    image_types = {str(v).upper() for _, ds in headers for v in (getattr(ds, "ImageType", None) or [])}
    description = str(getattr(first, "SeriesDescription", "") or getattr(first, "ProtocolName", "") or "").strip()
    return SeriesSummary(uid=series_uid, number=str(getattr(first, "SeriesNumber", "") or ""), description=description,
                         images=len(headers), positions=len(positions), phases=max(positions.values(), default=1),
                         localizer="LOCALIZER" in image_types)


@dataclass(frozen=True)
class SeriesChoice:
    summary: SeriesSummary
    reason: str  # which series, and why: printed and kept with the results


def choose_series(headers, folder: Path, series_uid: str | None = None):
    """The (path, dataset) headers of the short-axis cine among `headers`, and why it was chosen."""
    by_series = defaultdict(list)
    for path, ds in headers:
        by_series[str(getattr(ds, "SeriesInstanceUID", ""))].append((path, ds))
    if not by_series:
        raise InputError(f"no DICOM images found in {folder}")
    summaries = {uid: summarise(uid, items) for uid, items in by_series.items()}
    if series_uid is not None:
        if series_uid not in by_series:
            listed = "; ".join(s.shown() for s in summaries.values())
            raise InputError(f"--series {series_uid} is not in {folder}; its series: {listed}")
        chosen = summaries[series_uid]
        return by_series[series_uid], SeriesChoice(chosen, f"{chosen.shown()}, chosen with --series")
    if len(by_series) == 1:
        only = next(iter(summaries.values()))
        if only.unfit_reason is None or only.positions == 0:  # unreadable positions: the reader says what is wrong
            return by_series[only.uid], SeriesChoice(only, f"{only.shown()}, the only series in the folder")
    fit = [s for s in summaries.values() if s.unfit_reason is None]
    if not fit:
        passed = "; ".join(f"{s.shown()}: {s.unfit_reason}" for s in summaries.values())
        raise InputError(f"no short-axis cine in {folder}: {passed}; expected a series with several slice positions, "
                         "each imaged at several cardiac phases")
    # a cine before a single-phase stack, then the description's hint
    rank = {s.uid: (s.is_cine, s.hint) for s in fit}
    best = max(rank.values())
    tied = [s for s in fit if rank[s.uid] == best]
    if len(tied) > 1:
        listed = "; ".join(s.shown() for s in tied)
        raise InputError(f"{folder} mixes {len(tied)} DICOM series that fit a short-axis cine equally [{listed}]; "
                         "put one cine series per folder or choose one with --series UID")
    chosen = tied[0]
    why = ["several slice positions" + (" and phases" if chosen.is_cine else " (one phase: a 3D stack)")]
    if chosen.hint > 0:
        why.append("a short-axis description")
    others = [f"{s.shown(with_uid=False)}: {s.unfit_reason or _ranked_lower(s, chosen)}"
              for s in summaries.values() if s.uid != chosen.uid]
    reason = f"{chosen.shown()}: {', '.join(why)}"
    if others:
        reason += f"; passed over {'; '.join(others)}"
    return by_series[chosen.uid], SeriesChoice(chosen, reason)


def _ranked_lower(other: SeriesSummary, chosen: SeriesSummary) -> str:
    if chosen.is_cine and not other.is_cine:
        return "one phase only"
    return "its description does not name a short axis" if other.hint < chosen.hint else "ranked lower"
