"""Manual correction of a result: measurements recomputed from the (edited) segmentation.

After the user paints, erases or smooths in a segment editor, the volumes in the
result's tables no longer match the mask. :func:`apply_edits` reads every frame's
segmentation back as a labelmap on the input grid (the current frame from the
proxy node, which holds the edits not yet stored in the sequence), recomputes
the numbers with the backend's own ``unetgan.measurements.cine_measurements``
(voxel counts x voxel volume, ED/ES by blood-pool volume) and rewrites the two
table nodes in place, so every view of them updates. :func:`watch_edits` does the
same by itself after every change of the segmentation (the module starts it when it
shows a result), so the tables and the volume chart always describe the masks on
screen without a click.

A result is "edited" only while its masks differ from what the backend returned: the
backend's labels of every frame are recorded (as SHA-256 fingerprints, on the
segmentation's sequence node, saved with the scene) when the result is made, and
:func:`edited_frames` compares the masks of every frame with them; undoing every edit
makes the result unedited again. Every recomputation also checks the new numbers for
values no heart gives (:mod:`unetgan.plausibility`, e.g. a mass more than half away from
the backend's) and replaces the result's plausibility warnings.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import slicer

from unetgan.measurements import cine_measurements
from unetgan.plausibility import measurement_warnings

from .backend_labels import (backend_record, current_frame, fingerprint, input_frames, quiet_vtk,
                             record_backend_labels, segmentation_labels)
from .context import module_logic
from .measurements import FRAME_COLUMNS, summary_rows
from .results import store_measurements
from .segmentation import labels_of


def commit_current_frame(result) -> None:
    """Store the proxy segmentation (the frame being edited) into its sequence item now."""
    if result.browser is None or result.segmentation_sequence is None or result.segmentation is None:
        return
    module_logic("sequences").UpdateSequencesFromProxyNodes(result.browser, result.segmentation)


NOTES = ("adapter", "segmenter", "input", "test_time_augmentation", "runtime", "postprocessing")  # keys that
# describe the run (how the masks were first made), not the masks


def voxel_volume_ml(volume_node) -> float:
    return float(np.prod(volume_node.GetSpacing())) / 1000.0


def edited_frames(result, labels: np.ndarray | None = None) -> list[int]:
    """1-based numbers of the frames whose masks differ from what the backend returned (``labels``: the
    result's labels (T, Z, Y, X) when already read). Empty for an untouched result, and again after every
    edit was undone. A result without a record (made by an older version) is recorded now, as it is."""
    labels = segmentation_labels(result) if labels is None else labels
    record = backend_record(result)
    if record is None:
        record_backend_labels(result, labels)
        return []
    original = record["sha256"]
    return [t + 1 for t, frame in enumerate(labels) if t >= len(original) or fingerprint(frame) != original[t]]


def recompute_measurements(result, labels: np.ndarray | None = None) -> dict:
    """Measurements of the segmentation as it is now (same keys as the backend's measurements.json), with
    ``edited``/``edited_frames`` and the plausibility warnings of these numbers."""
    labels = segmentation_labels(result) if labels is None else labels
    return _with_notes(result, cine_measurements(labels, voxel_volume_ml(input_frames(result)[0])), labels)


def update_tables(result, measurements: dict) -> None:
    """Rewrite the values of the result's summary and per-frame tables (same rows, same columns)."""
    if result.table is not None:
        table = result.table.GetTable()
        rows = summary_rows(measurements)
        names, values = table.GetColumnByName("Measurement"), table.GetColumnByName("Value")
        units = table.GetColumnByName("Unit")
        table.SetNumberOfRows(len(rows))
        for row, (label, value, unit) in enumerate(rows):
            names.SetValue(row, label)
            values.SetValue(row, value)
            units.SetValue(row, unit)
        table.Modified()
        result.table.Modified()
    if result.frames_table is not None:
        table = result.frames_table.GetTable()
        frames = measurements.get("frames") or []
        for column, key, _unit, _text in FRAME_COLUMNS:
            array = table.GetColumnByName(column)
            if array is None:
                continue
            for row, frame in enumerate(frames[: table.GetNumberOfRows()]):
                array.SetValue(row, float(frame.get(key, np.nan)))
        table.Modified()
        result.frames_table.Modified()


def _with_notes(result, measurements: dict, labels: np.ndarray) -> dict:
    """The backend's notes (which adapter and segmenter, why) kept on recomputed numbers, so that the DICOM SEG,
    SR and report of an export name the models that made the result; which frames differ from the backend's
    masks; the run's warnings kept and the plausibility warnings of the new numbers in place of the old ones
    (``result.warnings``, what the front ends show, too)."""
    previous = result.measurements or {}
    for note in NOTES:
        measurements[note] = previous.get(note)
    frames = edited_frames(result, labels)
    measurements["edited"], measurements["edited_frames"] = bool(frames), frames
    record = backend_record(result) or {}
    found = measurement_warnings(measurements, record.get("myocardial_mass_g") if frames else None)
    stale = set(previous.get("measurement_warnings") or [])
    measurements["measurement_warnings"] = found
    measurements["warnings"] = [w for w in previous.get("warnings") or [] if w not in stale] + found
    kept = [w for w in result.warnings or [] if w not in stale]
    result.warnings = kept + [w for w in found if w not in kept]
    return measurements


def _publish(result, measurements: dict) -> dict:
    update_tables(result, measurements)
    result.measurements = measurements
    if result.table is not None:
        store_measurements(result)  # the scene holds the numbers too (see results.py)
    return measurements


def apply_edits(result, labels: np.ndarray | None = None) -> dict:
    """Recompute the measurements from the (edited) segmentation, update the tables, ``result.measurements``
    (with ``edited``, ``edited_frames`` and the warnings) and ``result.warnings``; returns the measurements.
    ``labels``: the result's labels when already read."""
    return _publish(result, recompute_measurements(result, labels))


class EditWatcher:
    """Keeps a result's tables (and so its chart) describing the masks on screen.

    Observes the segmentation node the user edits (for a cine the proxy, which shows
    the current frame): after every change of a segment the current frame is read
    again and the numbers of all frames are recomputed from the cached labels, so an
    edit costs one frame's read-out. ``schedule(callback)``, when given, defers the
    update (a GUI passes a short single-shot timer so one paint stroke, which fires
    several events, updates once); without it the update runs inside the event. ``on_update(measurements)``,
    when given, is called after each update: a panel re-shows ``result.warnings`` and
    ``measurements["edited_frames"]`` there.
    """

    EVENTS = ("SourceRepresentationModified", "SegmentAdded", "SegmentRemoved", "SegmentModified")

    def __init__(self, result, schedule: Callable[[Callable[[], None]], None] | None = None,
                 on_update: Callable[[dict], None] | None = None):
        self.result = result
        self.schedule = schedule
        self.on_update = on_update
        self.updates = 0
        self._labels: np.ndarray | None = None
        self._pending = False
        node = result.segmentation
        self._observed = [(node, node.AddObserver(getattr(slicer.vtkSegmentation, name), self._on_modified))
                          for name in self.EVENTS if hasattr(slicer.vtkSegmentation, name)]

    def _on_modified(self, caller=None, event=None) -> None:
        if self.schedule is None:
            self.update()
        elif not self._pending:
            self._pending = True
            self.schedule(self._scheduled_update)

    def _scheduled_update(self) -> None:
        self._pending = False
        if self._observed:  # not stopped meanwhile
            self.update()

    def update(self) -> dict:
        """Recompute now (the current frame from the screen, the others from the cache)."""
        result = self.result
        with quiet_vtk():
            if self._labels is None:
                self._labels = segmentation_labels(result)
            else:
                shown = current_frame(result)
                self._labels[shown] = labels_of(result.segmentation, input_frames(result)[shown])
        measurements = cine_measurements(self._labels, voxel_volume_ml(input_frames(result)[0]))
        self.updates += 1
        published = _publish(result, _with_notes(result, measurements, self._labels))
        if self.on_update is not None:
            self.on_update(published)
        return published

    def stop(self) -> None:
        for node, tag in self._observed:
            node.RemoveObserver(tag)
        self._observed = []


def watch_edits(result, schedule=None, on_update=None) -> EditWatcher:
    """Start keeping ``result``'s measurements in step with its segmentation (``.stop()`` ends it)."""
    return EditWatcher(result, schedule, on_update)
