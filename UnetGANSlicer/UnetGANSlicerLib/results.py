"""A result that lives in the scene, not in a Python object.

A run's summary table node carries node references to every other node of the
run (input, segmentation, translated image, per-frame table, chart) and the
backend's notes (warnings, adapter) as an attribute. References and attributes
are saved with the scene, so after a module reload, or a scene saved and opened
again, :func:`result_from_table` rebuilds the
:class:`AdaptSegmentResult` (defined here) that Export, Recompute and
the edit watcher need. The sequences and the browser of a cine are found from
the proxy nodes, as Slicer itself finds them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .backend_labels import record_backend_labels
from .context import module_logic

RESULT_ATTRIBUTE = "UnetGAN.result"  # JSON: warnings, adapter, measurements as last computed
ROLES = {  # node reference role -> AdaptSegmentResult field
    "unetganInput": "input",
    "unetganSegmentation": "segmentation",
    "unetganTranslated": "translated",
    "unetganFramesTable": "frames_table",
    "unetganChart": "chart",
}


@dataclass
class AdaptSegmentResult:
    """The nodes one run made. For a cine, ``translated`` and ``segmentation`` are proxies of the new sequences."""

    input: object
    segmentation: object
    table: object  # summary: EDV, ESV, SV, EF, mass (or volumes of a single frame)
    frames_table: object  # one row per frame
    translated: object | None = None  # None when no adapter was used
    translated_sequence: object | None = None
    segmentation_sequence: object | None = None
    browser: object | None = None
    chart: object | None = None  # blood-pool volume per frame (cines)
    measurements: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    n_frames: int = 1
    seconds: float = 0.0

    @property
    def nodes(self) -> list:
        """Every node this run added to the scene (display and storage nodes aside)."""
        series = self.chart.GetNthPlotSeriesNode(0) if self.chart is not None else None
        candidates = [self.translated_sequence, self.segmentation_sequence, self.translated, self.segmentation,
                      self.table, self.frames_table, series, self.chart]
        return [node for node in candidates if node is not None]


def remember(result) -> None:
    """Record the result's nodes and notes on its summary table node, and its masks as the backend made them
    (what "edited" is measured against: :func:`~UnetGANSlicerLib.editing.edited_frames`)."""
    table = result.table
    for role, field_name in ROLES.items():
        node = getattr(result, field_name, None)
        table.SetNodeReferenceID(role, node.GetID() if node is not None else None)
    record_backend_labels(result)
    store_measurements(result)


def store_measurements(result) -> None:
    notes = {"warnings": list(result.warnings), "measurements": result.measurements, "n_frames": result.n_frames}
    result.table.SetAttribute(RESULT_ATTRIBUTE, json.dumps(notes, default=json_default))


def is_result_table(node) -> bool:
    return node is not None and node.IsA("vtkMRMLTableNode") and node.GetAttribute(RESULT_ATTRIBUTE) is not None


def result_from_table(table):
    """The result whose summary table is ``table``, rebuilt from the scene (None if it is not one)."""
    if not is_result_table(table):
        return None
    nodes = {field_name: table.GetNodeReference(role) for role, field_name in ROLES.items()}
    if nodes["input"] is None or nodes["segmentation"] is None:
        return None
    notes = json.loads(table.GetAttribute(RESULT_ATTRIBUTE) or "{}")
    result = AdaptSegmentResult(input=nodes["input"], segmentation=nodes["segmentation"], table=table,
                                frames_table=nodes["frames_table"], translated=nodes["translated"],
                                measurements=notes.get("measurements") or {}, warnings=notes.get("warnings") or [],
                                n_frames=int(notes.get("n_frames") or 1), chart=nodes["chart"])
    browser = module_logic("sequences").GetFirstBrowserNodeForProxyNode(result.segmentation)
    if browser is not None:
        result.browser = browser
        result.segmentation_sequence = browser.GetSequenceNode(result.segmentation)
        if result.translated is not None:
            result.translated_sequence = browser.GetSequenceNode(result.translated)
    return result


def result_tables(scene) -> list:
    """Every result summary table of the scene, oldest first."""
    tables = [scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
              for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode"))]
    return [table for table in tables if is_result_table(table)]


def json_default(value):
    """numpy scalars as Python numbers (json.dumps' ``default``)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
