"""The one-page report a cardiologist reads (report.pdf), drawn with matplotlib.

Patient and study identifiers, scanner and adapter, the numbers with reference ranges,
the blood-pool volume over the cardiac cycle with ED and ES, the ED and ES
mid-ventricular slices with contours (original and translated side by side), and every
warning in plain words. Frames are numbered from 1 (the first phase), as everywhere else;
a single frame has no curve and no ED/ES pair: its one mid-ventricular slice is shown.
`report_page` draws the page as a matplotlib figure; the PDF is written by matplotlib's
PdfPages (no hand-made PDF), the README's picture of the page by scripts/report_figure.py
from the same figure.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..figures import COLOURS, mid_lv_slice, pyplot
from ..measurements import BLOOD_POOL, frame_index
from ..plausibility import MAX_MYOCARDIAL_VARIATION_PERCENT
from .algorithm import AlgorithmInfo
from .pdf_fonts import readable, report_fonts

A4_PORTRAIT_IN = (8.27, 11.69)
# Approximate adult reference ranges for SSFP cine CMR, men and women pooled (the sex is often not in the
# header): after Kawel-Boehm et al., J Cardiovasc Magn Reson 2020;22:87. Local ranges take precedence.
REFERENCE_RANGES = {
    "edv_ml": ("End-diastolic volume (EDV)", "mL", (86.0, 214.0)),
    "esv_ml": ("End-systolic volume (ESV)", "mL", (22.0, 82.0)),
    "sv_ml": ("Stroke volume (SV)", "mL", (56.0, 144.0)),
    "ef_percent": ("Ejection fraction (EF)", "%", (55.0, 78.0)),
    "myocardial_mass_ed_g": ("Myocardial mass (ED)", "g", (52.0, 176.0)),
}
RANGE_SOURCE = ("Reference ranges: approximate adult SSFP values, men and women pooled (Kawel-Boehm et al., "
                "JCMR 2020); local ranges take precedence.")


@dataclass
class ReportContent:
    """What the page shows; built by `report_content` while the images are still in memory."""

    identifiers: list[tuple[str, str]]  # (label, value) rows: patient, study, scanner, series, adapter, software
    measurements: dict  # as measurements.json
    slices: dict = field(default_factory=dict)  # "ED"/"ES" (a cine) or "Frame 1" -> (original, translated or None,
    # labels) 2D arrays
    trigger_times_ms: list[float] | None = None
    warnings: list[str] = field(default_factory=list)


def _text(value) -> str:
    text = str(value if value is not None else "").replace("^", " ").strip()
    return text or "-"


RUNTIME_WORDS = {"onnx-int8": "8-bit integers (ONNX Runtime)", "onnx": "32-bit floats (ONNX Runtime)",
                 "torch": "32-bit floats (PyTorch)"}


def _processing(measurements: dict) -> str:
    """How the masks were made, beyond the models: flip averaging, runtime, edits."""
    parts = []
    passes = measurements.get("test_time_augmentation")
    if passes:
        parts.append("one pass per image (no averaging over mirrored copies)" if passes == "none"
                     else f"averaged over mirrored copies ({passes})")
    runtime = measurements.get("runtime")
    if runtime:
        parts.append(f"networks in {RUNTIME_WORDS.get(runtime, runtime)}")
    if measurements.get("edited_frames"):
        parts.append(f"masks edited by the user in frame(s) {', '.join(map(str, measurements['edited_frames']))}")
    elif measurements.get("edited"):
        parts.append("masks edited by the user")
    return ", ".join(parts) or "-"


def _identifiers(header, series_reason: str, adapter_reason: str, algorithm: AlgorithmInfo,
                 measurements: dict | None = None) -> list[tuple[str, str]]:
    get = lambda keyword: getattr(header, keyword, None)  # noqa: E731
    date = _text(get("StudyDate"))
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    field_strength = get("MagneticFieldStrength")
    scanner = " ".join(_text(v) for v in (get("Manufacturer"), get("ManufacturerModelName")) if v)
    if field_strength:
        scanner += f", {float(field_strength):g} T"
    if get("InstitutionName"):
        scanner += f" ({_text(get('InstitutionName'))})"
    return [
        ("Patient", f"{_text(get('PatientName'))}   ID {_text(get('PatientID'))}   born {_text(get('PatientBirthDate'))}"
                    f"   sex {_text(get('PatientSex'))}"),
        ("Study", f"{date}   {_text(get('StudyDescription'))}   accession {_text(get('AccessionNumber'))}"),
        ("Scanner", scanner or "-"),
        ("Series used", series_reason or "-"),
        ("Adapter", adapter_reason or "-"),
        ("Software", algorithm.shown()),
        ("Processing", _processing(measurements or {})),
    ]


def report_content(original: np.ndarray, translated: np.ndarray | None, labels: np.ndarray, measurements: dict,
                   header, algorithm: AlgorithmInfo, series_reason: str = "", adapter_reason: str = "",
                   trigger_times_ms=None) -> ReportContent:
    """original, translated, labels: (T, Z, Y, X); header: one source image's DICOM header."""
    ed, es = frame_index(measurements, "ed"), frame_index(measurements, "es")
    phases = (("ED", ed), ("ES", es)) if ed is not None and es is not None and len(labels) > 1 else (("Frame 1", 0),)
    chosen = {name: (t, mid_lv_slice(labels[t])) for name, t in phases}
    window = _heart_window([labels[t, z] for t, z in chosen.values()])
    slices = {}
    for name, (t, z) in chosen.items():
        slices[name] = (np.array(original[t, z][window], np.float32),
                        None if translated is None else np.array(translated[t, z][window], np.float32),
                        np.array(labels[t, z][window]))
    return ReportContent(_identifiers(header, series_reason, adapter_reason, algorithm, measurements), measurements, slices,
                         list(trigger_times_ms) if trigger_times_ms is not None else None,
                         list(measurements.get("warnings", [])))


def _heart_window(label_slices) -> tuple[slice, slice]:
    """The part of the field a reader looks at: the LV with its own size as margin on every side (the whole
    field when there is no LV), so that contours are large enough to judge on a printed page."""
    found = np.any(np.stack(label_slices) > 0, axis=0)
    if not found.any():
        return slice(None), slice(None)
    window = []
    for axis in (1, 0):
        index = np.nonzero(found.any(axis))[0]
        low, high = int(index.min()), int(index.max()) + 1
        margin = max(high - low, 16)
        window.append(slice(max(0, low - margin), min(found.shape[1 - axis], high + margin)))
    return tuple(window)


def _flag(value: float, low: float, high: float) -> str:
    return "below range" if value < low else "above range" if value > high else "within range"


def _table_rows(measurements: dict) -> list[list[str]]:
    rows = []
    for key, (name, unit, (low, high)) in REFERENCE_RANGES.items():
        value = measurements.get(key)
        if value is None:
            continue
        rows.append([name, f"{value:.1f} {unit}", f"{low:g}-{high:g} {unit}", _flag(value, low, high)])
    ed, es = measurements.get("ed_frame_number"), measurements.get("es_frame_number")
    if rows and ed is not None and es is not None:
        rows.append(["ED and ES frames (frame 1 = first phase)", f"{ed} and {es}", "-", "-"])
    variation = measurements.get("myocardial_volume_variation_percent")
    if rows and variation is not None:
        bound = MAX_MYOCARDIAL_VARIATION_PERCENT
        rows.append(["Myocardial volume variation", f"{variation:.1f} %", f"up to {bound:g} %",
                     "above bound" if variation > bound else "within bound"])
    if not rows:  # a single frame: no EDV, ESV, EF
        frame = measurements["frames"][0]
        rows = [["Blood-pool volume", f"{frame['blood_pool_ml']:.1f} mL", "-", "-"],
                ["Myocardial mass", f"{frame['myocardial_mass_g']:.1f} g", "-", "-"]]
    return rows


def _draw_identifiers(ax, content: ReportContent) -> None:
    ax.axis("off")
    y = 1.0
    for label, value in content.identifiers:
        lines = textwrap.wrap(value, 115) or ["-"]
        ax.text(0.0, y, label, fontsize=8, fontweight="bold", va="top", transform=ax.transAxes)
        ax.text(0.15, y, "\n".join(lines[:4]), fontsize=7, va="top", transform=ax.transAxes)
        y -= 0.12 * min(len(lines), 4) + 0.03


def _draw_table(ax, content: ReportContent) -> None:
    ax.axis("off")
    rows = _table_rows(content.measurements)
    table = ax.table(cellText=rows, colLabels=["Measurement", "Value", "Reference range", ""], loc="upper center",
                     cellLoc="left", colWidths=[0.38, 0.17, 0.27, 0.18])
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1, 1.2)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("0.75")
        if row == 0:
            cell.set_text_props(fontweight="bold")
        elif col == 3 and rows[row - 1][3] not in ("within range", "within bound", "-"):
            cell.set_text_props(color="firebrick", fontweight="bold")
            table[row, 1].set_text_props(color="firebrick", fontweight="bold")


def _draw_curve(ax, content: ReportContent) -> None:
    m = content.measurements
    volumes = [f["blood_pool_ml"] for f in m["frames"]]
    times = content.trigger_times_ms if content.trigger_times_ms and len(content.trigger_times_ms) == len(volumes) else None
    x = np.asarray(times if times else range(1, len(volumes) + 1), float)  # frame numbers from 1
    ax.plot(x, volumes, "-o", color="0.25", markersize=3, linewidth=1.2)
    for phase, name, colour, offset in (("ed", "ED", "tab:blue", (8, -12)), ("es", "ES", "tab:red", (8, 4))):
        t = frame_index(m, phase)
        if t is not None:  # ED is the top of the curve: its label goes below the point, inside the axes
            ax.plot(x[t], volumes[t], "o", color=colour, markersize=7)
            late = t > len(volumes) / 2  # a point in the right half: the label to its left
            ax.annotate(f"{name} (frame {t + 1})", (x[t], volumes[t]), textcoords="offset points",
                        xytext=(-offset[0] if late else offset[0], offset[1]), fontsize=8, color=colour,
                        ha="right" if late else "left")
    ax.set_xlabel("trigger time (ms)" if times else "frame (1 = first phase)", fontsize=8)
    if not times:
        ax.xaxis.get_major_locator().set_params(integer=True)  # frame numbers, not fractions
    ax.set_ylabel("blood-pool volume (mL)", fontsize=8)
    ax.set_title("Left-ventricular blood-pool volume over the cardiac cycle", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _draw_slice(ax, image: np.ndarray, labels: np.ndarray, title: str) -> None:
    low, high = np.percentile(image, (1, 99.5))
    ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1, interpolation="nearest")
    for mask, colour in ((labels > 0, COLOURS[2]), (labels == BLOOD_POOL, COLOURS[1])):  # epicardium, endocardium
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _draw_warnings(ax, content: ReportContent) -> None:
    ax.axis("off")
    ax.text(0.0, 1.0, "Warnings", fontsize=8.5, fontweight="bold", va="top", transform=ax.transAxes)
    lines = [""]
    if content.warnings:
        for warning in content.warnings:
            lines += textwrap.wrap(warning, 120, initial_indent="- ", subsequent_indent="  ")
    else:
        lines.append("None: no out-of-distribution check fired.")
    lines += [""] + textwrap.wrap(RANGE_SOURCE, 130)
    lines += textwrap.wrap("Automatic segmentation by research software, not a medical device: check the contours "
                           "before using the numbers.", 130)
    ax.text(0.0, 1.0, "\n".join(lines[:16]), fontsize=7.5, va="top", transform=ax.transAxes, family="DejaVu Sans")


def report_page(content: ReportContent):
    """The page as a matplotlib figure (A4 portrait)."""
    plt = pyplot()  # imported here: the report's content is computed without matplotlib
    figure = plt.figure(figsize=A4_PORTRAIT_IN)
    grid = figure.add_gridspec(6, 4, height_ratios=[1.15, 1.4, 1.3, 1.45, 1.45, 1.0], hspace=0.45, wspace=0.08,
                               left=0.06, right=0.96, top=0.93, bottom=0.03)
    figure.suptitle("Left-ventricular function from cine MRI", fontsize=14, fontweight="bold", x=0.06, ha="left")
    _draw_identifiers(figure.add_subplot(grid[0, :]), content)
    _draw_table(figure.add_subplot(grid[1, :]), content)
    if "ED" in content.slices:  # a cine: its volume curve and the ED and ES slices
        _draw_curve(figure.add_subplot(grid[2, 1:3]), content)
    for row, name in zip((3, 4), content.slices):
        original, translated, labels = content.slices[name]
        _draw_slice(figure.add_subplot(grid[row, 0:2]), original, labels, f"{name}, mid-ventricular slice: original")
        if translated is not None:
            _draw_slice(figure.add_subplot(grid[row, 2:4]), translated, labels, f"{name}: translated (what the LV-Unet saw)")
    _draw_warnings(figure.add_subplot(grid[5, :]), content)
    return figure


def write_report_pdf(path: Path, content: ReportContent) -> Path:
    from matplotlib.backends.backend_pdf import PdfPages

    plt = pyplot()
    content, families = readable(content)  # names in any script: the fonts that show them, or it says it cannot
    with report_fonts(families):
        figure = report_page(content)
        try:
            with PdfPages(Path(path), metadata={"Title": "Left-ventricular function from cine MRI",
                                                "Creator": "UnetGANSlicer"}) as pdf:
                pdf.savefig(figure)
        finally:
            plt.close(figure)
    return Path(path)
