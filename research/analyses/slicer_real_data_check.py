"""Question: does the Slicer module's MRML layer handle real M&Ms and Sunnybrook data? Answer: docs/slicer.md (checked by hand on real data).

Hand check of the Slicer module's MRML layer on real data, outside the Slicer application.

    python research/analyses/slicer_real_data_check.py --mnms ../shared/data/mnms/siemens/A0S9V9_ED.nii.gz \
        --dicom ../shared/data/sunnybrook/SCD0000101/dicom --out out/slicer_check [--run-backend]

- M&Ms case (ED and ES NIfTI files with their ground truth, original geometry) loaded as a 2-frame cine
  into a slicer-core scene with the application's views (UnetGANSlicerLib.context.add_views); a result
  made from the ground truth (or, with --run-backend, by the backend with --adapter auto); the result
  layout shown; the views' planes and slices reported against the volume's slice-stack axis and both
  views rendered by Slicer's slice logic to PNG; then a paint edit of the ES frame and the EF in the
  table before and after.
- Each --dicom series: loaded by the backend's reader, its instance UIDs put on the volume as Slicer's
  DICOM plugins do, the automatic adapter chosen from the Manufacturer (folder index in place of
  Slicer's DICOM database), with --run-backend segmented with that adapter, and the views reported.
Prints one JSON report. Data stay where they are; nothing is written into the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "UnetGANSlicer"))

import slicer  # noqa: E402

from unetgan.io.images import read_image  # noqa: E402
from unetgan.measurements import cine_measurements  # noqa: E402
from UnetGANSlicerLib import adapt_and_segment, context, editing, layout, loading, vendor  # noqa: E402
from UnetGANSlicerLib import sequences as seq  # noqa: E402
from UnetGANSlicerLib.measurements import table_rows  # noqa: E402
from UnetGANSlicerLib.nodes import direction_matrix  # noqa: E402
from UnetGANSlicerLib.workflow import add_result_nodes  # noqa: E402


def slice_matrix(name) -> np.ndarray:
    matrix = layout.view_nodes(name)[0].GetSliceToRAS()
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def slice_index(volume, name) -> float:
    import vtk

    ras_to_ijk = vtk.vtkMatrix4x4()
    volume.GetRASToIJKMatrix(ras_to_ijk)
    return ras_to_ijk.MultiplyPoint([*slice_matrix(name)[:3, 3], 1.0])[2]


def ef_in_table(result) -> float:
    return {row["Measurement"]: row["Value"] for row in table_rows(result.table)}["Ejection fraction (EF)"]


def check_mnms(ed_path: Path, out: Path, run_backend: bool) -> dict:
    es_path = ed_path.with_name(ed_path.name.replace("_ED", "_ES"))
    ed, es = read_image(ed_path), read_image(es_path)
    frames = np.stack([ed.frames[0], es.frames[0]])
    logics = context.add_views(context.setup_standalone())
    loaded = loading.add_image(frames, ed.geometry, ed_path.name.split("_")[0], logics["scene"])
    if run_backend:
        result = adapt_and_segment(loaded.volume, adapter="auto")
    else:
        truth = [read_image(p.with_name(p.name.replace(".nii.gz", "_gt.nii.gz"))).frames[0] for p in (ed_path, es_path)]
        labels = np.where(np.isin(np.stack(truth), (1, 2)), np.stack(truth), 0).astype(np.uint8)
        measurements = cine_measurements(labels, float(np.prod(loaded.volume.GetSpacing())) / 1000.0)
        result = add_result_nodes(seq.read_input(loaded.volume), labels, measurements, translated=np.sqrt(frames))
    views = show_and_report(loaded.volume, result, out / ed_path.name.split(".")[0])

    # a paint edit of the ES frame (blood pool added in a 12x12-voxel corner of every slice)
    watcher = editing.watch_edits(result)
    ef_before = ef_in_table(result)
    loaded.browser.SetSelectedItemNumber(1)
    labels_es = editing.segmentation_labels(result)[1]
    blood = (labels_es == 1).astype(np.uint8)
    blood[:, :12, :12] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(blood, result.segmentation, "LeftVentricleBloodPool",
                                                     loaded.volume)
    ef_after = ef_in_table(result)
    watcher.stop()
    context.remove_views(logics)
    logics["scene"].Clear(True)
    return {"case": ed_path.name, **views, "backend_adapter": result.measurements.get("adapter"),
            "warnings": result.warnings, "ef_before_edit": ef_before, "ef_after_edit": ef_after,
            "tables_updated_by": "edit watcher (no button)", "watcher_updates": watcher.updates,
            "segmentation": "backend --adapter auto" if run_backend else "M&Ms ground truth (LV, myocardium)"}


def show_and_report(volume, result, stem: Path) -> dict:
    """Show the result layout (Yellow first turned Sagittal, as on a running Slicer), report the views'
    planes and slices against the volume's slice-stack axis, and render both views to PNG."""
    layout.view_nodes("Yellow")[0].SetOrientationToSagittal()
    if result is not None:
        shown = layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)
    else:
        shown = layout.show_side_by_side(volume)
    k_axis = direction_matrix(volume)[:, 2]
    views = {}
    for name in ("Red", "Yellow"):
        matrix = slice_matrix(name)
        normal = matrix[:3, 2] / np.linalg.norm(matrix[:3, 2])
        views[name] = {"normal_dot_slice_axis": round(abs(float(normal @ k_axis)), 9),
                       "slice_index": round(slice_index(volume, name), 6),
                       "field_of_view_mm": [round(v, 2) for v in layout.view_nodes(name)[0].GetFieldOfView()],
                       "orientation": layout.view_nodes(name)[0].GetOrientation()}
        _save_png(layout.render_view(name), stem.with_name(f"{stem.name}_{name}.png"))
    return {"slice_axis_ras": [round(float(v), 4) for v in k_axis], "layout_shown": shown, "views": views,
            "same_slice_and_plane": bool(np.allclose(slice_matrix("Red"), slice_matrix("Yellow"), atol=1e-9))}


def check_dicom(folder: Path, out: Path, run_backend: bool) -> dict:
    logics = context.add_views(context.setup_standalone())
    loaded = loading.load_image(folder, logics["scene"])
    index = vendor.FolderDicomIndex(folder)
    nodes = [loaded.sequence.GetNthDataNode(t) for t in range(loaded.n_frames)] if loaded.is_cine else [loaded.volume]
    for node in nodes:  # what Slicer's DICOM plugins record on the volumes they load
        node.SetAttribute(vendor.INSTANCE_UIDS_ATTRIBUTE, " ".join(index.files))
    choice = vendor.choose_adapter(loaded.volume, index)
    result = adapt_and_segment(loaded.volume, adapter=choice.adapter) if run_backend else None
    views = show_and_report(loaded.volume, result, out / folder.parent.name)
    if result is not None:
        views.update(ef=result.measurements.get("ef_percent"), backend_adapter=result.measurements.get("adapter"),
                     warnings=result.warnings)
    context.remove_views(logics)
    logics["scene"].Clear(True)
    return {"series": str(folder), "manufacturer": choice.manufacturer, "vendor": choice.vendor,
            "adapter": choice.adapter, "panel_text": choice.text, **views}


def _save_png(rgba, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, rgba[..., :3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnms", type=Path, action="append", default=[], help="an M&Ms *_ED.nii.gz (ES and _gt beside it)")
    parser.add_argument("--dicom", type=Path, action="append", default=[], help="a DICOM series folder")
    parser.add_argument("--out", type=Path, default=Path("out/slicer_check"), help="folder for the view renderings")
    parser.add_argument("--run-backend", action="store_true", help="segment with the backend (--adapter auto)")
    args = parser.parse_args(argv)
    report = {"mnms": [check_mnms(p, args.out, args.run_backend) for p in args.mnms],
              "dicom": [check_dicom(p, args.out, args.run_backend) for p in args.dicom]}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
