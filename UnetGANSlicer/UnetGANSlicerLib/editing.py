"""Manual correction of a result: measurements recomputed from the (edited) segmentation.

After the user paints, erases or smooths in a segment editor, the volumes in the
result's tables no longer match the mask. :func:`apply_edits` reads every frame's
segmentation back as a labelmap on the input grid (the current frame from the
proxy node, which holds the edits not yet stored in the sequence), recomputes
the numbers with the backend's own ``unetgan.measurements.cine_measurements``
(voxel counts x voxel volume, ED/ES by blood-pool volume) and rewrites the two
table nodes in place, so every view of them updates.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import vtk

from unetgan.measurements import cine_measurements

from .context import module_logic
from .measurements import FRAME_COLUMNS, summary_rows
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


def voxel_volume_ml(volume_node) -> float:
    return float(np.prod(volume_node.GetSpacing())) / 1000.0


def recompute_measurements(result) -> dict:
    """Measurements of the segmentation as it is now (same keys as the backend's measurements.json)."""
    labels = segmentation_labels(result)
    measurements = cine_measurements(labels, voxel_volume_ml(_input_frames(result)[0]))
    previous = result.measurements or {}
    measurements["warnings"] = list(previous.get("warnings") or [])
    measurements["adapter"] = previous.get("adapter")
    measurements["edited"] = True
    return measurements


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


def apply_edits(result) -> dict:
    """Recompute the measurements from the edited segmentation, update the tables and ``result.measurements``."""
    measurements = recompute_measurements(result)
    update_tables(result, measurements)
    result.measurements = measurements
    return measurements
