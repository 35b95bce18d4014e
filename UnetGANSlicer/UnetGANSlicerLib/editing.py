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
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import numpy as np
import slicer
import vtk

from unetgan.measurements import cine_measurements

from .context import module_logic
from .measurements import FRAME_COLUMNS, summary_rows
from .results import store_measurements
from .segmentation import labels_of


def _input_frames(result) -> list:
    """The node whose grid frame t's labels take: the input's sequence items for a cine, else the input."""
    browser, sequence = result.browser, None
    if browser is not None and result.segmentation_sequence is not None:
        sequence = browser.GetSequenceNode(result.input)
    if sequence is None:
        return [result.input]
    return [sequence.GetNthDataNode(t) for t in range(sequence.GetNumberOfDataNodes())]


def current_frame(result) -> int:
    """0-based frame the browser shows (0 for a single volume)."""
    if result.browser is None or result.segmentation_sequence is None:
        return 0
    return int(result.browser.GetSelectedItemNumber())


def commit_current_frame(result) -> None:
    """Store the proxy segmentation (the frame being edited) into its sequence item now."""
    if result.browser is None or result.segmentation_sequence is None or result.segmentation is None:
        return
    module_logic("sequences").UpdateSequencesFromProxyNodes(result.browser, result.segmentation)


@contextmanager
def _quiet_vtk():
    """slicer.util's segment export warns about a missing colour table on every call; it is not needed here."""
    previous = vtk.vtkObject.GetGlobalWarningDisplay()
    vtk.vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtk.vtkObject.SetGlobalWarningDisplay(previous)


def segmentation_labels(result) -> np.ndarray:
    """Labels (T, Z, Y, X) uint8 of every frame: 1 blood pool, 2 myocardium, edits included."""
    references = _input_frames(result)
    with _quiet_vtk():
        if result.segmentation_sequence is None:
            return labels_of(result.segmentation, references[0])[None]
        shown = current_frame(result)
        frames = []
        for t, reference in enumerate(references):
            node = result.segmentation if t == shown else result.segmentation_sequence.GetNthDataNode(t)
            frames.append(labels_of(node, reference))
    return np.stack(frames)


NOTES = ("adapter", "segmenter", "input", "test_time_augmentation", "runtime", "postprocessing")  # keys that
# describe the run (how the masks were first made), not the masks


def voxel_volume_ml(volume_node) -> float:
    return float(np.prod(volume_node.GetSpacing())) / 1000.0


def recompute_measurements(result) -> dict:
    """Measurements of the segmentation as it is now (same keys as the backend's measurements.json)."""
    labels = segmentation_labels(result)
    return _with_notes(result, cine_measurements(labels, voxel_volume_ml(_input_frames(result)[0])))


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


def _with_notes(result, measurements: dict) -> dict:
    """The backend's notes (warnings, which adapter and segmenter, why) kept on recomputed numbers, marked as
    edited: the DICOM SEG, SR and report of an export name the models that made the result."""
    previous = result.measurements or {}
    measurements["warnings"] = list(previous.get("warnings") or [])
    for note in NOTES:
        measurements[note] = previous.get(note)
    measurements["edited"] = True
    return measurements


def _publish(result, measurements: dict) -> dict:
    update_tables(result, measurements)
    result.measurements = measurements
    if result.table is not None:
        store_measurements(result)  # the scene holds the numbers too (see results.py)
    return measurements


def apply_edits(result) -> dict:
    """Recompute the measurements from the edited segmentation, update the tables and ``result.measurements``."""
    return _publish(result, recompute_measurements(result))


class EditWatcher:
    """Keeps a result's tables (and so its chart) describing the masks on screen.

    Observes the segmentation node the user edits (for a cine the proxy, which shows
    the current frame): after every change of a segment the current frame is read
    again and the numbers of all frames are recomputed from the cached labels, so an
    edit costs one frame's read-out. ``schedule(callback)``, when given, defers the
    update (a GUI passes a short single-shot timer so one paint stroke, which fires
    several events, updates once); without it the update runs inside the event.
    """

    EVENTS = ("SourceRepresentationModified", "SegmentAdded", "SegmentRemoved", "SegmentModified")

    def __init__(self, result, schedule: Callable[[Callable[[], None]], None] | None = None):
        self.result = result
        self.schedule = schedule
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
        with _quiet_vtk():
            if self._labels is None:
                self._labels = segmentation_labels(result)
            else:
                shown = current_frame(result)
                self._labels[shown] = labels_of(result.segmentation, _input_frames(result)[shown])
        measurements = cine_measurements(self._labels, voxel_volume_ml(_input_frames(result)[0]))
        self.updates += 1
        return _publish(result, _with_notes(result, measurements))

    def stop(self) -> None:
        for node, tag in self._observed:
            node.RemoveObserver(tag)
        self._observed = []


def watch_edits(result, schedule=None) -> EditWatcher:
    """Start keeping ``result``'s measurements in step with its segmentation (``.stop()`` ends it)."""
    return EditWatcher(result, schedule)
