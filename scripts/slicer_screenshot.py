"""The extension's screenshot: the module's result layout, rendered without the Slicer application.

    .venv/bin/python scripts/slicer_screenshot.py --out Resources/Screenshots/UnetGANSlicer_result_layout.png

A GE phantom cine (made here, no patient data) is segmented by the shipped GE adapter and
LV-Unet through the MRML layer (``adapt_and_segment``, the backend as a subprocess, as the
module runs it); the result layout is shown on a slicer-core scene with the application's
views; Slicer's slice logic renders the Red (original) and Yellow (translated) views with the
segmentation as the label layer; the per-frame blood-pool volume comes from the result's
table. Matplotlib puts the three together, labelled as a stand-in for a screenshot of the
Slicer application (which cannot run here).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "UnetGANSlicer"))

from unetgan.io.images import Geometry  # noqa: E402
from unetgan.measurements import frame_index  # noqa: E402
from unetgan.phantom import make_study  # noqa: E402
from UnetGANSlicerLib import adapt_and_segment, context, layout, loading  # noqa: E402
from UnetGANSlicerLib.measurements import table_rows  # noqa: E402

STAND_IN = ("Stand-in for a Slicer screenshot: the module's result layout rendered by Slicer's slice logic "
            "(slicer-core, no Qt) on a GE phantom cine, shipped GE adapter and LV-Unet")


def label_layer(scene, result):
    """The segmentation as a labelmap in the views' label layer (what the segmentation display shows)."""
    import slicer

    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "segmentation labels")
    slicer.modules.segmentations.logic().ExportVisibleSegmentsToLabelmapNode(result.segmentation, labelmap,
                                                                            result.input)
    for name in layout.VIEW_ROLES:
        composite = layout.view_nodes(name)[1]
        composite.SetLabelVolumeID(labelmap.GetID())
        composite.SetLabelOpacity(0.45)
    return labelmap


def render(out: Path, adapter: str, phases: int, slices: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = make_study("GE", seed=4, n_phases=phases, n_slices=slices, matrix=128)
    logics = context.add_views(context.setup_standalone())
    scene = logics["scene"]
    loaded = loading.add_image(study.image, Geometry(study.spacing, study.origin, study.direction), "GE phantom cine",
                               scene, study.trigger_times_ms)
    result = adapt_and_segment(loaded.volume, adapter=adapter)
    loaded.browser.SetSelectedItemNumber(frame_index(result.measurements, "ed") or 0)
    layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)
    label_layer(scene, result)
    # the mid-ventricular slice, as a reader would look first
    for name in layout.VIEW_ROLES:
        slice_node = layout.view_nodes(name)[0]
        slice_node.JumpSliceByOffsetting(*_mid_slice_point(loaded.volume))
    layout.copy_slice(layout.ORIGINAL_VIEW, layout.TRANSLATED_VIEW)
    views = {name: layout.render_view(name) for name in layout.VIEW_ROLES}
    rows = table_rows(result.frames_table)

    figure = plt.figure(figsize=(10, 7.2), facecolor="black")
    grid = figure.add_gridspec(2, 2, height_ratios=[3, 1.25], hspace=0.28, wspace=0.04)
    for column, (name, role) in enumerate(layout.VIEW_ROLES.items()):
        axis = figure.add_subplot(grid[0, column])
        axis.imshow(views[name][..., :3])
        axis.set_title(f"{name}: {role}", color="white", fontsize=10)
        axis.axis("off")
    chart = figure.add_subplot(grid[1, :])
    chart.plot([r["Frame"] for r in rows], [r["Blood pool"] for r in rows], "o-", color="#d94040")
    chart.set_facecolor("#101010")
    chart.tick_params(colors="white", labelsize=8)
    chart.set_xlabel("frame", color="white", fontsize=9)
    chart.set_ylabel("blood pool (mL)", color="white", fontsize=9)
    ef = result.measurements.get("ef_percent")
    chart.set_title(f"LV blood-pool volume per frame (EF {ef:.0f} %)" if ef is not None else "LV blood-pool volume",
                    color="white", fontsize=10)
    figure.text(0.5, 0.01, STAND_IN, color="#c0c0c0", fontsize=7.5, ha="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100, facecolor="black")
    context.remove_views(logics)
    scene.Clear(True)
    print(out)


def _mid_slice_point(volume):
    import vtk

    dims = volume.GetImageData().GetDimensions()
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(ijk_to_ras)
    return ijk_to_ras.MultiplyPoint([(dims[0] - 1) / 2, (dims[1] - 1) / 2, dims[2] // 2, 1.0])[:3]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "Resources" / "Screenshots" / "UnetGANSlicer_result_layout.png")
    parser.add_argument("--adapter", default="GE")
    parser.add_argument("--phases", type=int, default=10)
    parser.add_argument("--slices", type=int, default=6)
    args = parser.parse_args(argv)
    render(args.out, args.adapter, args.phases, args.slices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
