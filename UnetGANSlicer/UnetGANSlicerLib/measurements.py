"""The backend's ``measurements.json`` as table nodes.

Two tables per run:

- the summary (``Measurement``, ``Value``, ``Unit``): EDV, ESV, SV, EF, myocardial
  mass at ED, the ED/ES frame numbers and the myocardial volume's variation over the
  cycle for a cine; blood-pool volume, myocardial volume and mass for a single volume;
- the per-frame table (``Frame``, ``Index``, ``Blood pool``, ``Myocardium``,
  ``Myocardial mass``), one row per frame, ready to plot as a volume curve.

Frame numbers are 1-based as Slicer's sequence browser shows them, as in measurements.json.
"""
from __future__ import annotations

import math

import vtk

from unetgan.measurements import frame_index, frame_number_of

from .nodes import removed_on_error, unique_name

FRAME_COLUMNS = (
    # (column name, key in measurements.json, unit, description)
    ("Blood pool", "blood_pool_ml", "mL", "LV blood-pool volume"),
    ("Myocardium", "myocardium_ml", "mL", "LV myocardial volume"),
    ("Myocardial mass", "myocardial_mass_g", "g", "LV myocardial mass (1.05 g/mL)"),
)


def summary_rows(measurements: dict) -> list[tuple[str, float, str]]:
    """(name, value, unit) rows; missing values are NaN."""
    frames = measurements.get("frames") or []

    def value(key):
        v = measurements.get(key)
        return math.nan if v is None else float(v)

    if len(frames) > 1:
        ed, es = frame_index(measurements, "ed"), frame_index(measurements, "es")
        mass = measurements.get("myocardial_mass_ed_g")
        if mass is None and ed is not None:
            mass = frames[ed].get("myocardial_mass_g")
        return [
            ("End-diastolic volume (EDV)", value("edv_ml"), "mL"),
            ("End-systolic volume (ESV)", value("esv_ml"), "mL"),
            ("Stroke volume (SV)", value("sv_ml"), "mL"),
            ("Ejection fraction (EF)", value("ef_percent"), "%"),
            ("Myocardial mass at ED", math.nan if mass is None else float(mass), "g"),
            ("ED frame", math.nan if ed is None else float(ed + 1), ""),
            ("ES frame", math.nan if es is None else float(es + 1), ""),
            ("Myocardial volume variation over the cycle", value("myocardial_volume_variation_percent"), "%"),
        ]
    frame = frames[0] if frames else {}
    return [(name, float(frame.get(key, math.nan)), unit) for name, key, unit, _ in FRAME_COLUMNS]


def _column(node, array, name, unit="", description=""):
    array.SetName(name)
    node.AddColumn(array)
    if unit:
        node.SetColumnUnitLabel(name, unit)
    if description:
        node.SetColumnDescription(name, description)
    return array


def add_summary_table(scene, name: str, measurements: dict):
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", unique_name(scene, name))
    with removed_on_error(node):
        _fill_summary(node, summary_rows(measurements))
    return node


def _fill_summary(node, rows):
    names = _column(node, vtk.vtkStringArray(), "Measurement")
    values = _column(node, vtk.vtkDoubleArray(), "Value")
    units = _column(node, vtk.vtkStringArray(), "Unit")
    node.GetTable().SetNumberOfRows(len(rows))
    for row, (label, value, unit) in enumerate(rows):
        names.SetValue(row, label)
        values.SetValue(row, value)
        units.SetValue(row, unit)
    node.GetTable().Modified()
    node.SetLocked(True)


def add_frames_table(scene, name: str, measurements: dict, index_values=None, index_label: str = "Index"):
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", unique_name(scene, name))
    with removed_on_error(node):
        _fill_frames(node, measurements.get("frames") or [], index_values, index_label)
    return node


def _fill_frames(node, frames, index_values, index_label):
    numbers = _column(node, vtk.vtkIntArray(), "Frame", description="frame number (1-based)")
    index = _column(node, vtk.vtkStringArray(), index_label, description="sequence index value of the frame")
    columns = [(_column(node, vtk.vtkDoubleArray(), col, unit, text), key) for col, key, unit, text in FRAME_COLUMNS]
    node.GetTable().SetNumberOfRows(len(frames))
    for row, frame in enumerate(frames):
        t = frame_number_of(frame, row) - 1
        numbers.SetValue(row, t + 1)
        index.SetValue(row, str(index_values[t]) if index_values is not None and t < len(index_values) else str(t))
        for array, key in columns:
            array.SetValue(row, float(frame.get(key, math.nan)))
    node.GetTable().Modified()
    node.SetLocked(True)


def table_rows(node) -> list[dict]:
    """A table node's rows as dicts (column name -> value), for tests and reports."""
    table = node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c, column in enumerate(names):
            array = table.GetColumn(c)
            row[column] = array.GetValue(r)
        rows.append(row)
    return rows
