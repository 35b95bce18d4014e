"""Finding the short-axis cine among the series of a DICOM study.

A scanner exports a whole study: localisers, long-axis cines (2, 3, 4 chamber), the
short-axis cine, perhaps flow or late-enhancement series. The short-axis cine is the
series that images several slice positions, each at several cardiac phases. Localisers
(ImageType LOCALIZER) and single-position cines (long-axis views) are passed over; the
series description (SeriesDescription, else ProtocolName) is only a hint that ranks
series that fit equally otherwise. Two series that still fit equally are refused, with
their UIDs, so that the user chooses one (`--series UID`): guessing would measure the
wrong acquisition without anyone noticing.

A short-axis stack exported as one series per slice position (``sax_5``, ``sax_6``, ...) is
joined into one cine first (:mod:`.dicom_stacks`). Series are made of :class:`.dicom_frames.Frame`
records, so that a multi-frame file counts each of its frames as an image.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .dicom_series import SeriesSummary, summarise
from .dicom_stacks import join_series, stacks_of_single_slices


@dataclass(frozen=True)
class SeriesChoice:
    summary: SeriesSummary
    reason: str  # which series, and why: printed and kept with the results
    warnings: list = field(default_factory=list)  # what the user should know about the choice (a series left out)


def _requested(series_uid) -> list[str]:
    """--series: one UID, several (a list, or separated by commas), or None."""
    if series_uid is None:
        return []
    values = [series_uid] if isinstance(series_uid, str) else list(series_uid)
    return [uid.strip() for value in values for uid in str(value).split(",") if uid.strip()]


def choose_series(frames, folder: Path, series_uid=None):
    """The frames (:class:`.dicom_frames.Frame`) of the short-axis cine among `frames`, and why it was chosen.

    `series_uid`: one SeriesInstanceUID, or several (one series per slice position) to join."""
    by_series = defaultdict(list)
    for frame in frames:
        by_series[frame.series_uid].append(frame)
    if not by_series:
        raise InputError(f"no DICOM images found in {folder}")
    summaries = {uid: summarise(uid, items) for uid, items in by_series.items()}
    wanted = _requested(series_uid)
    if wanted:
        missing = [uid for uid in wanted if uid not in by_series]
        if missing:
            listed = "; ".join(s.shown() for s in summaries.values())
            raise InputError(f"--series {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {folder}; "
                             f"its series: {listed}")
        if len(wanted) == 1:
            chosen = summaries[wanted[0]]
            return by_series[wanted[0]], SeriesChoice(chosen, f"{chosen.shown()}, chosen with --series")
        stack = join_series([summaries[uid] for uid in wanted], by_series, folder)
        return stack.frames, SeriesChoice(stack.summary, f"{stack.summary.shown()}, chosen with --series: {stack.said}",
                                          stack.warnings)
    stacks, hint = stacks_of_single_slices(summaries, by_series, folder)
    warnings = [w for stack in stacks for w in stack.warnings] + ([hint] if hint else [])
    for stack in stacks:
        for member in stack.summary.members:
            del summaries[member.uid]
        summaries[stack.summary.uid] = stack.summary
        by_series[stack.summary.uid] = stack.frames
    said = {stack.summary.uid: stack.said for stack in stacks}
    if len(summaries) == 1:
        only = next(iter(summaries.values()))
        if only.unfit_reason is None or only.positions == 0:  # unreadable positions: the reader says what is wrong
            reason = f"{only.shown()}, {said[only.uid] if only.uid in said else 'the only series in the folder'}"
            return by_series[only.uid], SeriesChoice(only, reason, warnings)
    fit = [s for s in summaries.values() if s.unfit_reason is None]
    if not fit:
        passed = "; ".join(f"{s.shown()}: {s.unfit_reason}" for s in summaries.values())
        raise InputError(f"no short-axis cine in {folder}: {passed}; expected a series with several slice positions, "
                         "each imaged at several cardiac phases" + (f" ({hint})" if hint else ""))
    # a cine before a single-phase stack, then the description's hint
    rank = {s.uid: (s.is_cine, s.hint) for s in fit}
    best = max(rank.values())
    tied = [s for s in fit if rank[s.uid] == best]
    if len(tied) > 1:
        listed = "; ".join(s.shown() for s in tied)
        raise InputError(f"{folder} mixes {len(tied)} DICOM series that fit a short-axis cine equally [{listed}]; "
                         "put one cine series per folder or choose one with --series UID")
    chosen = tied[0]
    why = [said[chosen.uid]] if chosen.uid in said else []
    why.append("several slice positions" + (" and phases" if chosen.is_cine else " (one phase: a 3D stack)"))
    if chosen.hint > 0:
        why.append("a short-axis description")
    others = [f"{s.shown(with_uid=False)}: {s.unfit_reason or _ranked_lower(s, chosen)}"
              for s in summaries.values() if s.uid != chosen.uid]
    reason = f"{chosen.shown()}: {', '.join(why)}"
    if others:
        reason += f"; passed over {'; '.join(others)}"
    return by_series[chosen.uid], SeriesChoice(chosen, reason, warnings)


def _ranked_lower(other: SeriesSummary, chosen: SeriesSummary) -> str:
    if chosen.is_cine and not other.is_cine:
        return "one phase only"
    return "its description does not name a short axis" if other.hint < chosen.hint else "ranked lower"
