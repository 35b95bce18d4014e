"""Figures like the paper's Fig. 4/5: original with its segmentation, translated image,
segmentation of the translated image overlaid on the original."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Slicer's default-ish colours for the two structures
COLOURS = {1: (0.85, 0.25, 0.25), 2: (0.95, 0.80, 0.30)}


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported on first use: the helpers below that only compute
    (mid_lv_slice) work where matplotlib is not installed (a stock 3D Slicer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def overlay(ax, image: np.ndarray, labels: np.ndarray | None, title: str) -> None:
    low, high = np.percentile(image, (1, 99))
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    if labels is not None:
        rgba = np.zeros(labels.shape + (4,))
        for value, colour in COLOURS.items():
            rgba[labels == value] = (*colour, 0.45)
        ax.imshow(rgba, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def comparison_rows(rows: list[dict], path: Path, title: str = "") -> Path:
    """One row per case: each dict has 'name', 'original', 'translated', 'before' and 'after' (2D labels)
    and optionally 'reference'."""
    columns = 4 + any("reference" in r for r in rows)
    fig, axes = pyplot().subplots(len(rows), columns, figsize=(2.6 * columns, 2.7 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        plain_title = f"{row['name']}: original" + (" + segmentation" if row["before"] is not None else "")
        overlay(ax_row[0], row["original"], row["before"], plain_title)
        overlay(ax_row[1], row["translated"], None, "translated to source look")
        overlay(ax_row[2], row["translated"], row["after"], "segmentation of translated")
        overlay(ax_row[3], row["original"], row["after"], "... shown on the original")
        if columns == 5:
            overlay(ax_row[4], row["original"], row.get("reference"), "reference labels")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def mid_lv_slice(labels: np.ndarray) -> int:
    """The slice with the most LV in it (a good slice to show)."""
    counts = (labels > 0).reshape(labels.shape[0], -1).sum(1)
    return int(np.argmax(counts)) if counts.any() else labels.shape[0] // 2


def before_after_row(volume, clean, adapted) -> dict:
    """One figure row for a labelled volume: its most-LV slice segmented without and with adaptation."""
    before = clean(volume.image.array, volume.image.geometry.spacing)
    after = adapted(volume.image.array, volume.image.geometry.spacing)
    z = mid_lv_slice(volume.labels)
    return {"name": f"{volume.subject} {volume.phase}", "original": volume.image.array[z],
            "translated": after.translated[z], "before": before.labels[z], "after": after.labels[z],
            "reference": volume.labels[z]}
