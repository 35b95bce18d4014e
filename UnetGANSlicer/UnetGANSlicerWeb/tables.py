"""The result's numbers in the page: the summary and per-frame tables, the volume curve, the warnings.

Everything shown is read from what the MRML layer made: the result's table nodes
(``UnetGANSlicerLib.measurements``, frame numbers as the user sees them) and its
warnings (the backend's, and those the MRML layer adds after an edit). Nothing is
computed here but the text of a number.
"""
from __future__ import annotations

import math

from UnetGANSlicerLib.measurements import table_rows

from .plot import as_data_url, volume_curve_png

ED_ROW, ES_ROW = "ED frame", "ES frame"


def shown_number(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e6 else f"{value:.1f}"


def _frame_number(value) -> int | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) else None


class ResultTables:
    """Keeps the page's tables, curve and warnings describing ``page.result``."""

    STATE = {"ug_summary": [], "ug_frame_rows": [], "ug_curve": "", "ug_warnings": []}

    def __init__(self, page):
        self.page = page
        self.state = page.state

    def clear(self) -> None:
        self.state.update(dict(self.STATE))

    def refresh(self) -> None:
        result = self.page.result
        if result is None:
            return
        summary = table_rows(result.table)
        self.state.ug_summary = [{"name": r["Measurement"], "value": shown_number(r["Value"]), "unit": r["Unit"]}
                                 for r in summary]
        self.state.ug_frame_rows = [{"frame": int(r["Frame"]), "blood": shown_number(r["Blood pool"]),
                                     "myo": shown_number(r["Myocardium"]), "mass": shown_number(r["Myocardial mass"])}
                                    for r in table_rows(result.frames_table)]
        self.state.ug_warnings = self.warnings()
        self.refresh_curve()

    def warnings(self) -> list[str]:
        """Each warning once: first those about the numbers as they are now (the MRML layer's plausibility check,
        redone after every edit: at the top, where an edit's consequence is seen), then the run's."""
        result = self.page.result
        measurements = result.measurements or {}
        return list(dict.fromkeys([*(measurements.get("measurement_warnings") or []), *result.warnings,
                                   *(measurements.get("warnings") or [])]))

    def refresh_curve(self) -> None:
        result = self.page.result
        if result is None or result.n_frames < 2:
            self.state.ug_curve = ""
            return
        rows = table_rows(result.frames_table)
        marked = {r["Measurement"]: _frame_number(r["Value"]) for r in table_rows(result.table)}
        loaded = self.page.input
        png = volume_curve_png([int(r["Frame"]) for r in rows], [float(r["Blood pool"]) for r in rows],
                               current=int(self.state.ug_frame) if loaded and loaded.is_cine else None,
                               ed=marked.get(ED_ROW), es=marked.get(ES_ROW), edited=bool(self.state.ug_edited))
        self.state.ug_curve = as_data_url(png)
