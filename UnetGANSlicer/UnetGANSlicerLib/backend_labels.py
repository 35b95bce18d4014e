"""The result's masks as the scene holds them, and the record of the masks the backend returned.

Read by :mod:`.results` (which records the backend's masks when a result is made) and :mod:`.editing` (which
tells edited frames from untouched ones by comparing the masks with that record).
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager

import numpy as np
import vtk

from unetgan.plausibility import study_mass_g

from .segmentation import labels_of


def input_frames(result) -> list:
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


@contextmanager
def quiet_vtk():
    """slicer.util's segment export warns about a missing colour table on every call; it is not needed here."""
    previous = vtk.vtkObject.GetGlobalWarningDisplay()
    vtk.vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtk.vtkObject.SetGlobalWarningDisplay(previous)


def segmentation_labels(result) -> np.ndarray:
    """Labels (T, Z, Y, X) uint8 of every frame: 1 blood pool, 2 myocardium, edits included."""
    references = input_frames(result)
    with quiet_vtk():
        if result.segmentation_sequence is None:
            return labels_of(result.segmentation, references[0])[None]
        shown = current_frame(result)
        frames = []
        for t, reference in enumerate(references):
            node = result.segmentation if t == shown else result.segmentation_sequence.GetNthDataNode(t)
            frames.append(labels_of(node, reference))
    return np.stack(frames)


BACKEND_LABELS_ATTRIBUTE = "UnetGAN.backendLabels"  # JSON: {"sha256": [one per frame], "myocardial_mass_g": ...}


def fingerprint(frame_labels: np.ndarray) -> str:
    """SHA-256 of one frame's labels (values and shape): equal exactly when the masks are."""
    frame_labels = np.ascontiguousarray(frame_labels, dtype=np.uint8)
    return hashlib.sha256(repr(frame_labels.shape).encode() + frame_labels.tobytes()).hexdigest()


def _record_node(result):
    """Where the backend's labels are recorded: the segmentation sequence of a cine (the proxy node is
    rewritten by the browser), else the segmentation node; both are saved with the scene."""
    return result.segmentation_sequence if result.segmentation_sequence is not None else result.segmentation


def record_backend_labels(result, labels: np.ndarray | None = None) -> None:
    """Record the result's masks as the backend returned them (default: as the scene holds them now, which
    is right only before any edit: :func:`~UnetGANSlicerLib.results.remember` calls it when the result is
    made), with the backend's myocardial mass."""
    labels = segmentation_labels(result) if labels is None else labels
    record = {"sha256": [fingerprint(frame) for frame in labels],
              "myocardial_mass_g": study_mass_g(result.measurements or {"frames": []})}
    _record_node(result).SetAttribute(BACKEND_LABELS_ATTRIBUTE, json.dumps(record))


def backend_record(result) -> dict | None:
    """The recorded fingerprints and mass of the backend's result (None for a result made before they were)."""
    text = _record_node(result).GetAttribute(BACKEND_LABELS_ATTRIBUTE)
    return json.loads(text) if text else None
