"""Figures of the phantom for docs/phantom.md (matplotlib, Agg).

    PYTHONPATH=UnetGANSlicer python scripts/phantom_figures.py [--seed 3] [--out docs/images]

Writes phantom_vendors.png (one subject on each vendor: mid slice at ED and ES, and the
labels over ED), phantom_slices.png (base to apex at ED, Philips) and
phantom_histograms.png (intensities after 1st-99th percentile normalisation, by vendor).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "UnetGANSlicer"))
from unetgan.phantom import VENDORS, make_study  # noqa: E402
from unetgan.phantom.profiles import profile_path  # noqa: E402

LABEL_COLOURS = ListedColormap([(0, 0, 0, 0), (0.9, 0.2, 0.2, 0.45), (0.2, 0.8, 0.3, 0.45), (0.2, 0.4, 1.0, 0.45)])


def _window(image: np.ndarray) -> tuple[float, float]:
    return 0.0, float(np.percentile(image, 99.5))


def _mid_slice(study) -> int:
    """The slice with the most LV (blood pool + myocardium) at ED, a mid-ventricular one."""
    return int(np.argmax(np.isin(study.labels[study.ed_frame], (1, 2)).sum(axis=(1, 2))))


def vendor_figure(studies: dict, path: Path) -> None:
    fig, axes = plt.subplots(len(studies), 3, figsize=(9, 3 * len(studies)))
    for row, (name, study) in enumerate(studies.items()):
        z = _mid_slice(study)
        low, high = _window(study.image)
        profile = study.meta["profile"]
        for col, (frame, title) in enumerate(((study.ed_frame, "ED"), (study.es_frame, "ES"), (study.ed_frame, "ED + labels"))):
            ax = axes[row, col]
            ax.imshow(study.image[frame, z], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            if col == 2:
                ax.imshow(study.labels[frame, z], cmap=LABEL_COLOURS, vmin=0, vmax=3, interpolation="nearest")
            ax.set_title(f"{name} {title}", fontsize=9)
            ax.set_axis_off()
        axes[row, 0].text(2, study.image.shape[2] - 4, f"{profile['field_strength_T']:g} T, flip {profile['flip_angle_deg']:g} deg, "
                          f"TR {profile['TR_ms']:g} ms, {study.spacing[0]:.2f} mm", color="yellow", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def slices_figure(study, path: Path) -> None:
    n = study.image.shape[1]
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4))
    low, high = _window(study.image)
    for z in range(n):
        for row, frame in enumerate((study.ed_frame, study.es_frame)):
            axes[row, z].imshow(study.image[frame, z], cmap="gray", vmin=low, vmax=high)
            axes[row, z].set_axis_off()
        axes[0, z].set_title(f"slice {z}", fontsize=8)
    axes[0, 0].text(-10, 128, "ED", fontsize=9, ha="right")
    axes[1, 0].text(-10, 128, "ES", fontsize=9, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def histogram_figure(studies: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, study in studies.items():
        image = study.image[study.ed_frame]
        low, high = np.percentile(image, [1, 99])
        ax.hist(np.clip((image - low) / (high - low), 0, 1).ravel(), bins=100, range=(0, 1),
                histtype="step", density=True, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("intensity after 1st-99th percentile normalisation (ED volume)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    studies = {vendor: make_study(vendor, seed=args.seed) for vendor in VENDORS}
    studies["Siemens 3 T (example profile)"] = make_study(profile_path("Siemens").with_name("siemens_3t.json"), seed=args.seed)
    vendor_figure(studies, args.out / "phantom_vendors.png")
    slices_figure(studies["Philips"], args.out / "phantom_slices.png")
    histogram_figure({v: studies[v] for v in VENDORS}, args.out / "phantom_histograms.png")
    for name in ("phantom_vendors.png", "phantom_slices.png", "phantom_histograms.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
