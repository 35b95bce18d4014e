"""The images of one cine arranged as slices x phases, with what is missing or repeated said, never shifted.

Slices are the distinct positions along the slice normal; a phase is identified by its trigger time
(else by TemporalPositionIndex / TemporalPositionIdentifier), matched across slices to the phases of
the complete slices, so that an image missing at one slice is found where it is missing, not
absorbed by moving the later phases down one place. Then:

- the same image twice (one SOPInstanceUID, e.g. a file copied twice): read once, with a warning;
- two different images at one slice and phase: refused (two acquisitions mixed, or repeated);
- a slice with a phase fewer than the others (a file lost, or a slice acquired with one phase
  fewer): that phase is left out at every slice, with a warning naming slice and phase, as long as
  most phases remain; else refused, naming them;
- a slice position missing inside the stack (a step much larger than the others): refused.
No library arranges a cine from loose images with these checks: written here.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MAX_DROPPED_PHASES = 0.25  # of the cine's phases: more missing than this is not the same cine any more
PLACE_TOLERANCE = 0.3  # of a phase interval: farther from every phase's place, an image matches none
GAP_FACTOR = 1.5  # a step between slice positions this many times the smallest: a slice is missing


@dataclass(frozen=True)
class Placed:
    """One image with what places it: its slice position along the normal, its phase value, its position."""

    frame: object  # dicom_frames.Frame
    location: float  # mm along the slice normal
    phase: float  # trigger time (ms), temporal index, or instance number (order only)
    instance: int
    position: np.ndarray


def _unique_images(images: list[Placed], warnings: list[str]) -> list[Placed]:
    seen, kept, repeated = {}, [], []
    for image in images:
        key = (image.frame.sop_uid, image.frame.number)
        if image.frame.sop_uid and key in seen:
            repeated.append(f"{image.frame.name} repeats {seen[key].frame.name}")
            continue
        seen[key] = image
        kept.append(image)
    if repeated:
        more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
        warnings.append(f"{'; '.join(repeated[:3])}{more} (the same SOPInstanceUID): each image read once")
    return kept


def _where(z: int, n_slices: int, location: float) -> str:
    return f"slice {z + 1} of {n_slices} (at {location:.1f} mm)"


def _phase_name(t: int, n_phases: int, value: float, kind: str) -> str:
    said = {"trigger": f" (trigger time {value:g} ms)", "index": f" (temporal position {value:g})"}.get(kind, "")
    return f"phase {t + 1} of {n_phases}{said}"


def _missing_instances(images: list[Placed]) -> list[int]:
    numbers = sorted({i.instance for i in images if i.frame.number is None and i.instance > 0})
    if len(numbers) < 2:
        return []
    return sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))


def arrange(images: list[Placed], kind: str, folder) -> tuple[list[list[Placed]], list[float], list[str]]:
    """Images as [z][t] sorted by position and phase, the slice locations, and warnings.

    kind: what `phase` holds: "trigger", "index" or "order" (instance numbers: order only)."""
    warnings: list[str] = []
    images = _unique_images(images, warnings)
    by_location = defaultdict(list)
    for image in images:
        by_location[round(image.location, 2)].append(image)
    locations = sorted(by_location)
    n_slices = len(locations)
    slices = [sorted(by_location[loc], key=lambda i: (i.phase, i.instance)) for loc in locations]
    if kind != "order":
        for z, (loc, phases) in enumerate(zip(locations, slices)):
            values = [i.phase for i in phases]
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                names = [i.frame.name for i in phases if i.phase == twice[0]]
                what = {"trigger": "trigger time", "index": "temporal position"}[kind]
                unit = " ms" if kind == "trigger" else ""
                raise InputError(f"{folder}: {_where(z, n_slices, loc)} has {len(names)} images at {what} "
                                 f"{twice[0]:g}{unit} ({', '.join(names[:3])}); the folder mixes acquisitions or "
                                 "repeats images")
    _check_no_gap(locations, folder)
    n_phases = max(len(s) for s in slices)
    if all(len(s) == n_phases for s in slices):
        return slices, locations, warnings
    short = [z for z, s in enumerate(slices) if len(s) < n_phases]
    if kind == "order":
        listed = ", ".join(f"{_where(z, n_slices, locations[z])} has {len(slices[z])}" for z in short[:3])
        raise InputError(f"{folder}: the slices have different numbers of phases ({listed}, the others {n_phases}); "
                         "which phase is missing cannot be told without TriggerTime or TemporalPositionIdentifier")
    reference = _reference_phases(slices, n_phases)
    grid: list[list[Placed | None]] = []
    for z, phases in enumerate(slices):
        grid.append(_matched(phases, reference, z, n_slices, locations[z], kind, folder) if len(phases) < n_phases
                    else list(phases))
    missing = sorted({t for row in grid for t, image in enumerate(row) if image is None})
    said = "; ".join(f"{_where(z, n_slices, locations[z])} has no image at {_phase_name(t, n_phases, reference[t], kind)}"
                     for z, row in enumerate(grid) for t, image in enumerate(row) if image is None)
    lost = _missing_instances(images)
    if lost:
        said += f" (instance{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost[:5]))} missing from the series)"
    kept = n_phases - len(missing)
    if len(missing) > MAX_DROPPED_PHASES * n_phases or kept < 2:
        raise InputError(f"{folder}: the cine is incomplete: {said}; too many phases are missing to measure it "
                         f"({kept} of {n_phases} complete); expected every slice at every phase (export the whole series)")
    left_out = ", ".join(str(t + 1) for t in missing)
    warnings.append(f"the cine is incomplete: {said}: phase{'s' if len(missing) > 1 else ''} {left_out} "
                    f"{'are' if len(missing) > 1 else 'is'} left out at every slice, and the cine is read with "
                    f"{kept} of {n_phases} phases")
    return [[image for t, image in enumerate(row) if t not in missing] for row in grid], locations, warnings


def slice_gaps(locations: list[float]) -> tuple[float, list[int]]:
    """The stack's spacing and each i where the step from slice i to slice i + 1 leaves a slice position out.

    The spacing is the smallest step (sorted locations): a missing slice makes one step larger, never smaller."""
    steps = np.diff(locations)
    spacing = float(np.min(steps))
    return spacing, [i for i, step in enumerate(steps) if step > GAP_FACTOR * spacing]


def _check_no_gap(locations: list[float], folder) -> None:
    if len(locations) < 3:
        return
    spacing, gaps = slice_gaps(locations)
    if gaps:
        a, b = locations[gaps[0]], locations[gaps[0] + 1]
        raise InputError(f"{folder}: no image between the slice positions {a:.1f} mm and {b:.1f} mm, where the other "
                         f"slices are {spacing:.1f} mm apart: a slice position is missing from the series "
                         "(expected an evenly spaced short-axis stack)")


def _reference_phases(slices: list[list[Placed]], n_phases: int) -> list[float]:
    """Each phase's value at the complete slices (their median: trigger times differ a little between slices)."""
    complete = [s for s in slices if len(s) == n_phases]
    return [float(np.median([s[t].phase for s in complete])) for t in range(n_phases)]


def _matched(phases: list[Placed], reference: list[float], z: int, n_slices: int, location: float, kind: str,
             folder) -> list[Placed | None]:
    """The images of an incomplete slice at the phases they belong to (None where one is missing).

    A phase's place is counted in this slice's own phase interval from the first phase's delay: each
    slice is acquired in its own breath-hold, at its own heart rate, so the trigger times of the same
    phase drift apart between slices towards the end of the cycle."""
    usual = float(np.median(np.diff(reference))) if len(reference) > 1 else 1.0
    steps = np.diff([image.phase for image in phases])
    neighbours = steps[steps < 1.5 * usual]  # steps between consecutive phases, not across a missing one
    interval = float(np.median(neighbours)) if len(neighbours) else usual
    row: list[Placed | None] = [None] * len(reference)
    for image in phases:
        place = (image.phase - reference[0]) / interval if interval > 0 else -1.0
        t = int(round(place))
        if abs(place - t) > PLACE_TOLERANCE or not 0 <= t < len(reference) or row[t] is not None:
            raise InputError(f"{folder}: {_where(z, n_slices, location)} has {len(phases)} of {len(reference)} phases, "
                             f"and its {image.frame.name} matches no phase of the other slices; expected every slice "
                             "at the same phases (the cine is incomplete or mixes acquisitions)")
        row[t] = image
    return row
