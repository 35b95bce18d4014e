"""A short-axis cine exported as one series per slice position, joined into one.

Siemens exports (and public sets such as the Kaggle Data Science Bowl cardiac data) often hold the
short-axis stack as ``sax_5``, ``sax_6``, ...: each series one slice position at every phase. Taken
alone each looks like a long-axis view (one position). Series are joined when they share the frame
of reference, the orientation, the matrix, the pixel spacing, the number of phases and the trigger
times, and lie at distinct positions along their common normal: then they are one acquisition's
slices. A series among them that disagrees is left out with a warning that names it; a gap in the
joined stack (a slice position missing), or two series at one position, is refused with the series
named, since either would change the volumes. No library assembles such stacks: written here.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom_grid import slice_gaps
from .dicom_series import SeriesSummary

MIN_SERIES = 3  # two parallel single-slice cines are not yet a short-axis stack
ORIENTATION_DECIMALS = 2  # ~0.6 degree: the reader checks orientation within its own tolerance afterwards
# Trigger times: each slice is acquired in its own breath-hold, at its own heart rate, and the scanner spreads
# the phases over that R-R interval (Sunnybrook SCD0000101: intervals of 36.6 to 40.0 ms between slices). The
# same cine protocol: the first phase's delay within half a phase interval, the intervals within 25 %.
FIRST_TRIGGER_TOLERANCE = 0.5  # of the phase interval
INTERVAL_TOLERANCE = 0.25


@dataclass
class Stack:
    summary: SeriesSummary
    frames: list
    said: str  # how the series were joined, for the choice's reason
    warnings: list = field(default_factory=list)


@dataclass(frozen=True)
class _Slice:
    """What must agree between the series of one stack, and where each lies."""

    summary: SeriesSummary
    frame_of_reference: str
    orientation: tuple
    matrix: tuple
    spacing: tuple
    triggers: tuple
    position: np.ndarray
    normal: np.ndarray  # from the orientation as written, not rounded

    @property
    def along(self) -> tuple:
        return self.frame_of_reference, self.orientation


def _slice_of(summary: SeriesSummary, frames) -> _Slice | None:
    first = frames[0]
    try:
        cosines = [float(v) for v in first.get("ImageOrientationPatient")]
        orientation = tuple(round(v, ORIENTATION_DECIMALS) + 0.0 for v in cosines)
        position = np.array([float(v) for v in first.get("ImagePositionPatient")], dtype=float)
        spacing = tuple(round(float(v), 3) for v in first.get("PixelSpacing"))
        triggers = tuple(sorted(float(f.get("TriggerTime", 0) or 0) for f in frames))
    except (TypeError, ValueError):
        return None  # the reader says what is wrong if this series is the one chosen
    if len(orientation) != 6 or position.size != 3:
        return None
    normal = np.cross(cosines[:3], cosines[3:])
    matrix = (int(getattr(first.ds, "Rows", 0) or 0), int(getattr(first.ds, "Columns", 0) or 0))
    return _Slice(summary, str(getattr(first.ds, "FrameOfReferenceUID", "") or ""), orientation, matrix, spacing,
                  triggers, position, normal / (np.linalg.norm(normal) or 1.0))


def _triggers_agree(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    if len(a) < 2:
        return a == b
    interval_a, interval_b = float(np.median(np.diff(a))), float(np.median(np.diff(b)))
    interval = max(interval_a, interval_b, 1e-6)
    return (abs(a[0] - b[0]) <= max(FIRST_TRIGGER_TOLERANCE * interval, 1.0)
            and abs(interval_a - interval_b) <= INTERVAL_TOLERANCE * interval)


def _disagreement(one: _Slice, reference: _Slice) -> str | None:
    """How `one` differs from the stack's usual series, in words; None if it fits."""
    if one.matrix != reference.matrix:
        return f"matrix {one.matrix[0]} x {one.matrix[1]}, the others {reference.matrix[0]} x {reference.matrix[1]}"
    if one.spacing != reference.spacing:
        return f"pixel spacing {one.spacing[0]:g} x {one.spacing[1]:g} mm, the others {reference.spacing[0]:g} x {reference.spacing[1]:g} mm"
    if len(one.triggers) != len(reference.triggers):
        return f"{len(one.triggers)} phases, the others {len(reference.triggers)}"
    if not _triggers_agree(one.triggers, reference.triggers):
        return "other trigger times"
    return None


def _usual(slices: list[_Slice]) -> _Slice:
    """The series whose matrix, spacing and phases most series share."""
    counts = Counter((s.matrix, s.spacing, len(s.triggers)) for s in slices)
    common = counts.most_common(1)[0][0]
    return next(s for s in slices if (s.matrix, s.spacing, len(s.triggers)) == common)


def _stack(slices: list[_Slice], by_series, folder: Path, warnings: list[str]) -> Stack:
    """Join series that agree: check that they stack evenly along their normal, one series per position."""
    normal = slices[0].normal
    placed = sorted(slices, key=lambda s: float(s.position @ normal))
    where = [float(s.position @ normal) for s in placed]
    for (a, pa), (b, pb) in zip(zip(placed, where), zip(placed[1:], where[1:])):
        if abs(pb - pa) < 0.01:
            raise InputError(f"{folder}: {a.summary.shown()} and {b.summary.shown()} both image the slice position "
                             f"{pa:.1f} mm (a repeated acquisition?); choose the series to join with --series UID,UID,...")
    spacing, gap_after = slice_gaps(where)
    gaps = [(placed[i], placed[i + 1]) for i in gap_after]
    if gaps:
        shown = "; ".join(f"between {a.summary.shown(with_uid=False)} and {b.summary.shown(with_uid=False)} "
                          f"({float((b.position - a.position) @ normal):.1f} mm apart)" for a, b in gaps)
        raise InputError(f"{folder}: the short-axis stack of one series per slice position has a gap: {shown}, where "
                         f"the other slices are {spacing:.1f} mm apart; a slice position's series is missing (add it, or "
                         "choose the series to join with --series UID,UID,...)")
    members = tuple(s.summary for s in placed)
    frames = [frame for s in placed for frame in by_series[s.summary.uid]]
    descriptions = {m.description for m in members}
    summary = SeriesSummary(uid=",".join(m.uid for m in members), number="", images=len(frames),
                            description=descriptions.pop() if len(descriptions) == 1 else "",
                            positions=len(members), phases=max(m.phases for m in members), localizer=False,
                            members=members)
    shared = "frame of reference, " if len({s.frame_of_reference for s in placed}) == 1 else ""
    said = (f"joined {len(members)} series, one per slice position ({', '.join(_named(m) for m in members)}): "
            f"same orientation, {shared}matrix, pixel spacing, {len(placed[0].triggers)} phases and "
            f"trigger times, {spacing:.1f} mm apart")
    return Stack(summary, frames, said, warnings)


def _named(summary: SeriesSummary) -> str:
    return f"series {summary.number or '?'}" + (f" '{summary.description}'" if summary.description else "")


def _frames_of_reference_hint(groups) -> str:
    """What to say when parallel single-position cines would make a stack but for their frames of reference."""
    by_orientation = defaultdict(list)
    for (_, orientation), slices in groups.items():
        by_orientation[orientation].append(slices)
    for parts in by_orientation.values():
        slices = [s for part in parts for s in part]
        if len(parts) > 1 and len(slices) >= MIN_SERIES and all(len(part) < MIN_SERIES for part in parts):
            named = ", ".join(_named(s.summary) for s in slices[:4]) + (" ..." if len(slices) > 4 else "")
            return (f"{len(slices)} single-position cines ({named}) lie in parallel planes but carry {len(parts)} "
                    "different FrameOfReferenceUIDs (an anonymiser's doing?), so they are not joined; if they are one "
                    "short-axis stack, join them with --series UID,UID,...")
    return ""


def stacks_of_single_slices(summaries: dict[str, SeriesSummary], by_series, folder: Path) -> tuple[list[Stack], str]:
    """Short-axis cines made of one series per slice position, found among the series of a study; and a hint when
    parallel series were not joined because their frames of reference differ ("" otherwise)."""
    groups = defaultdict(list)
    for summary in summaries.values():
        if summary.positions == 1 and summary.is_cine and not summary.localizer:
            found = _slice_of(summary, by_series[summary.uid])
            if found is not None:
                groups[found.along].append(found)
    stacks = []
    for slices in groups.values():
        if len(slices) < MIN_SERIES:
            continue
        usual = _usual(slices)
        agreeing, warnings = [], []
        for one in slices:
            differs = _disagreement(one, usual)
            if differs is None:
                agreeing.append(one)
            else:
                warnings.append(f"{one.summary.shown()} lies in the plane of the short-axis series but has {differs}: "
                                "not joined to them")
        if len(agreeing) >= MIN_SERIES:
            stacks.append(_stack(agreeing, by_series, folder, warnings))
    return stacks, _frames_of_reference_hint(groups)


def join_series(summaries: list[SeriesSummary], by_series, folder: Path) -> Stack:
    """The series named with --series, joined: each must be one slice position, all must agree."""
    slices = []
    for summary in summaries:
        found = _slice_of(summary, by_series[summary.uid])
        if summary.positions != 1 or found is None:
            raise InputError(f"--series names several series to join, but {summary.shown()} is not one slice position "
                             "of a cine with a usable geometry; expected one series per slice position")
        slices.append(found)
    if len({s.orientation for s in slices}) > 1:
        raise InputError(f"--series names series that do not lie in parallel planes "
                         f"({'; '.join(s.summary.shown() for s in slices)}); expected the series of one short-axis stack")
    usual = _usual(slices)
    for one in slices:
        differs = _disagreement(one, usual)
        if differs is not None:
            raise InputError(f"--series: {one.summary.shown()} has {differs}; expected series that agree")
    references = {s.frame_of_reference for s in slices}
    warnings = [] if len(references) == 1 else [
        f"the {len(slices)} series joined with --series carry {len(references)} different FrameOfReferenceUIDs: their "
        "positions are taken as one patient coordinate system, as asked (check that the patient did not move)"]
    return _stack(slices, by_series, folder, warnings)
