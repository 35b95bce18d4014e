"""The per-frame blood-pool volume curve as a small PNG (matplotlib, no network, no JavaScript library).

It draws the values of the result's per-frame table node (made by the MRML
layer), nothing else: ED and ES are the frames of largest and smallest volume
as the summary table reports them.
"""
from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def volume_curve_png(frames: list[int], volumes: list[float], current: int | None = None,
                     ed: int | None = None, es: int | None = None, edited: bool = False,
                     width_px: int = 400, height_px: int = 220) -> bytes:
    """PNG bytes: blood-pool volume (mL) against frame number (1-based)."""
    dpi = 100
    figure, axes = plt.subplots(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    try:
        finite = [(f, v) for f, v in zip(frames, volumes) if v is not None and math.isfinite(v)]
        if finite:
            xs, ys = zip(*finite)
            axes.plot(xs, ys, "-o", color="#c0392b", markersize=4, linewidth=1.5, label="blood pool")
            for frame, text, colour in ((ed, "ED", "#2471a3"), (es, "ES", "#28b463")):
                if frame is not None and frame in xs:
                    value = ys[xs.index(frame)]
                    axes.annotate(text, (frame, value), textcoords="offset points", xytext=(0, 6),
                                  ha="center", fontsize=8, color=colour, fontweight="bold")
            if current is not None:
                axes.axvline(current, color="#7f8c8d", linewidth=1, linestyle="--")
            axes.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("frame", fontsize=8)
        axes.set_ylabel("LV blood pool (mL)", fontsize=8)
        axes.set_title("Blood-pool volume per frame" + (" (edited)" if edited else ""), fontsize=9)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
        figure.tight_layout(pad=0.4)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def as_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
