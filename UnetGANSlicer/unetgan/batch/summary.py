"""`summary.csv`: one row per study, rewritten atomically each time a study finishes."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..outputs import atomic_path
from .studies import Study

COLUMNS = ["study", "input", "status", "vendor", "adapter", "edv_ml", "esv_ml", "sv_ml", "ef_percent", "mass_g",
           "warnings", "seconds", "reason"]
WARNING_SEPARATOR = " | "


def study_mass_g(measurements: dict) -> float | None:
    """Myocardial mass at end-diastole for a cine, of the one frame for a 3D volume."""
    if measurements.get("myocardial_mass_ed_g") is not None:
        return measurements["myocardial_mass_ed_g"]
    frames = measurements.get("frames") or []
    return frames[0]["myocardial_mass_g"] if len(frames) == 1 else None


def ok_row(study: Study, measurements: dict, vendor: str, seconds: float | str) -> dict:
    return {"study": study.name, "input": study.input, "status": "ok", "vendor": vendor or "",
            "adapter": measurements.get("adapter") or "none",
            **{key: measurements.get(key) for key in ("edv_ml", "esv_ml", "sv_ml", "ef_percent")},
            "mass_g": study_mass_g(measurements), "warnings": WARNING_SEPARATOR.join(measurements.get("warnings", [])),
            "seconds": seconds if isinstance(seconds, str) else round(seconds, 2), "reason": ""}


def failed_row(study: Study, reason: str, seconds: float | str = "") -> dict:
    # one line: a reason with line breaks would break the table for readers that do not parse CSV quoting
    reason = " ".join(str(reason).split())
    return {**dict.fromkeys(COLUMNS, ""), "study": study.name, "input": study.input, "status": "failed",
            "seconds": seconds if isinstance(seconds, str) else round(seconds, 2), "reason": reason}


def row_of_finished_study(study: Study, study_dir: Path, earlier: dict | None) -> dict:
    """The row of a study a previous run completed, from its own outputs (its seconds from the old summary)."""
    measurements = json.loads((Path(study_dir) / "measurements.json").read_text())
    earlier = earlier or {}
    return ok_row(study, measurements, measurements.get("vendor") or earlier.get("vendor", ""), earlier.get("seconds", ""))


def read_summary(path: Path) -> dict[str, dict]:
    """The rows of an earlier summary by study name (empty when there is none or it is unreadable)."""
    try:
        with open(path, newline="") as handle:
            return {row["study"]: row for row in csv.DictReader(handle) if row.get("study")}
    except (OSError, csv.Error, UnicodeDecodeError, KeyError):
        return {}


def write_summary(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if row.get(key) is None else row[key] for key in COLUMNS} for row in rows)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text.getvalue())
