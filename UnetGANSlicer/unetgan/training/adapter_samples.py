"""Sample pictures of an adapter run: what the generator makes of held-out target slices at each evaluation."""
from __future__ import annotations

from pathlib import Path

import torch

def save_samples(path: Path, target: torch.Tensor, translated: torch.Tensor, reconstructed: torch.Tensor,
                 labels: torch.Tensor, title: str) -> None:
    """One row per slice: target | translated | reconstruction | translated with LV-Unet mask outline.

    Images in [0, 1]. Uses the Agg canvas directly, so the global matplotlib
    backend of the caller (e.g. Slicer's) is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(target)
    figure = Figure(figsize=(8, 2 * rows + 0.4))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 4, squeeze=False)
    columns = ("target", "translated (G_S)", "reconstruction", "LV-Unet on translated")
    for row in range(rows):
        panels = (target[row, 0], translated[row, 0], reconstructed[row, 0], translated[row, 0])
        for col, (ax, image) in enumerate(zip(axes[row], panels)):
            ax.imshow(image.cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(columns[col], fontsize=8)
        mask = labels[row].cpu().numpy()
        for label, colour in ((1, "red"), (2, "lime")):
            if (mask == label).any():
                axes[row, 3].contour(mask == label, levels=[0.5], colors=colour, linewidths=0.7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
