"""The DICOM SEG, the DICOM SR and the PDF report of a result in the scene (for the Slicer module and the web page).

Export writes, beside the segmentation files of :mod:`.export` (base name ``B``):

- ``B_report.pdf``, the one-page report, always (for a volume not loaded from DICOM without
  patient and study identifiers);
- for a volume loaded from DICOM: ``B_segmentation.seg.dcm`` (every image of the cine),
  ``B_measurements.sr.dcm`` (TID 1500) and, for a cine, ``B_segmentation_ED.seg.dcm`` and
  ``B_segmentation_ES.seg.dcm``: one phase each. Slicer's DICOM module reads SEGs with dcmqi,
  which shows a cine SEG as the union over its phases; a one-phase SEG it shows as it is.

The DICOM source of a volume is what Slicer's DICOM module records on it: the SOP instance
UIDs of its files (:mod:`.vendor`), which the DICOM database turns into files. Those files
are read again by the backend's reader (the SEG must reference them, and carry their
patient and study). Slicer may have put the series on its grid in another slice order
or axis order than the backend's reader: the scene's labels are carried onto the reader's
grid by the two grids' geometry (a whole-voxel permutation and flip of the axes, or a
refusal), and each frame onto the DICOM phase whose images its voxels equal (or a
refusal), so that every mask lands on the source image it was drawn on.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetgan.errors import InputError
from unetgan.io.geometry import Geometry
from unetgan.measurements import frame_index

from .nodes import LPS_TO_RAS, array_of, ijk_to_ras
from .vendor import INSTANCE_UIDS_ATTRIBUTE, dicom_database, uid_carriers

GRID_TOLERANCE = 0.01  # voxels: how far the two grids' index transform may be from whole voxels
SAME_IMAGE_TOLERANCE = 1e-3  # of the image's largest value: Slicer and the reader both apply the rescale


def source_instance_uids(volume_node) -> list[str]:
    """Every SOP instance UID recorded on the volume (for a cine on its items: all phases), each once."""
    found = {}
    for node in uid_carriers(volume_node):
        for uid in (node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split() if node is not None else []:
            found.setdefault(uid)
    return list(found)


def has_dicom_origin(volume_node) -> bool:
    return bool(source_instance_uids(volume_node))


def no_dicom_note(volume_node) -> str | None:
    """What Export tells the user when it cannot write the DICOM SEG and SR (None when it can)."""
    from unetgan.dicom_outputs import pdf_available

    if has_dicom_origin(volume_node):
        return None
    pdf = "the PDF report was written, without patient or study data" if pdf_available() else "no PDF either"
    return (f"{volume_node.GetName()!r} was not loaded from DICOM, so no DICOM SEG or SR was written (they must "
            f"reference the source images; load the series through the DICOM module); {pdf}")


def source_files(volume_node, database=None) -> list[str]:
    """The files of the volume's DICOM images, from the DICOM database (Slicer's, or one given)."""
    uids = source_instance_uids(volume_node)
    database = database if database is not None else dicom_database()
    if database is None:
        raise InputError(f"{volume_node.GetName()!r} was loaded from DICOM, but no DICOM database is open to find "
                         "its files; open the DICOM module's database the series was loaded from")
    files, missing = [], []
    for uid in uids:
        path = database.fileForInstance(uid)
        (files if path and os.path.isfile(path) else missing).append(path or uid)
    if missing:
        raise InputError(f"{len(missing)} of the {len(uids)} DICOM images of {volume_node.GetName()!r} are no longer "
                         f"in the DICOM database or on disk (e.g. {missing[0]}); import the series again")
    return files


@contextmanager
def series_folder(files: list[str]):
    """A temporary folder holding links to exactly these files (the backend's reader reads a folder; the
    database's folder may hold other series). Where links cannot be made (Windows without the right), copies."""
    folder = Path(tempfile.mkdtemp(prefix="unetgan-dicom-"))
    try:
        for number, path in enumerate(files):
            target = folder / f"{number:05d}.dcm"
            try:
                os.symlink(os.path.abspath(path), target)
            except OSError:
                shutil.copyfile(path, target)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ras_matrix(geometry: Geometry) -> np.ndarray:
    """IJK-to-RAS (4 x 4) of a backend (LPS) geometry."""
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ np.reshape(geometry.direction, (3, 3)) @ np.diag(geometry.spacing)
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(geometry.origin)
    return matrix


@dataclass(frozen=True)
class GridMapping:
    """How arrays (T, Z, Y, X) on the scene's grid become arrays on the DICOM reader's grid."""

    axes: tuple[int, int, int]  # for each array axis of the DICOM grid, the scene array's axis (0 = Z)
    flips: tuple[bool, bool, bool]  # whether it runs the other way

    def apply(self, frames: np.ndarray) -> np.ndarray:
        moved = np.transpose(frames, (0, *(axis + 1 for axis in self.axes)))
        for axis, flip in enumerate(self.flips):
            if flip:
                moved = np.flip(moved, axis + 1)
        return np.ascontiguousarray(moved)


def grid_mapping(scene_ijk_to_ras: np.ndarray, scene_shape, geometry: Geometry, dicom_shape) -> GridMapping:
    """The mapping when the two grids have the same voxels (up to the order and direction of the axes), else
    an InputError. Shapes are (Z, Y, X)."""
    index = np.linalg.inv(scene_ijk_to_ras) @ ras_matrix(geometry)  # DICOM (i, j, k) -> scene (i, j, k)
    linear, offset = index[:3, :3], index[:3, 3]
    whole = np.round(linear)
    same = (np.abs(linear - whole).max() <= GRID_TOLERANCE and sorted(np.abs(whole).sum(0)) == [1, 1, 1]
            and sorted(np.abs(whole).sum(1)) == [1, 1, 1])
    axes, flips = [], []
    if same:
        for array_axis in range(3):  # array axis 0 is k (Z), 2 is i (X)
            ijk = 2 - array_axis
            scene_ijk = int(np.argmax(np.abs(whole[:, ijk])))
            size = scene_shape[2 - scene_ijk]
            flip = whole[scene_ijk, ijk] < 0
            start = size - 1 if flip else 0
            same = same and size == dicom_shape[array_axis] and abs(offset[scene_ijk] - start) <= GRID_TOLERANCE
            axes.append(2 - scene_ijk)
            flips.append(bool(flip))
    if not same:
        raise InputError("the volume in the scene is not on the voxel grid of its DICOM images (resampled or "
                         "cropped after loading?); the DICOM SEG must lie on the source images: export the volume "
                         "as loaded from DICOM")
    return GridMapping(tuple(axes), tuple(flips))


def same_image(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a - b).max()) <= SAME_IMAGE_TOLERANCE * (1.0 + float(np.abs(b).max()))


def frame_order(scene_frames: np.ndarray, dicom_frames: np.ndarray, name: str) -> list[int]:
    """For each DICOM phase, the scene frame holding the same images (frames (T, Z, Y, X), already on the DICOM
    grid). A frame keeps its own place when it matches there."""
    if len(scene_frames) != len(dicom_frames):
        raise InputError(f"{name!r} has {len(scene_frames)} frame(s), its DICOM images make {len(dicom_frames)} "
                         "phase(s); the DICOM SEG must cover the images the result was made on")
    order, unused = [], list(range(len(scene_frames)))
    for t, dicom in enumerate(dicom_frames):
        candidates = ([t] if t in unused else []) + [s for s in unused if s != t]
        match = next((s for s in candidates if same_image(scene_frames[s].astype(np.float32), dicom)), None)
        if match is None:
            raise InputError(f"phase {t + 1} of the DICOM images of {name!r} equals no frame of the volume in the "
                             "scene (were the voxels changed after loading?); the DICOM SEG must lie on the source "
                             "images")
        order.append(match)
        unused.remove(match)
    return order


def reordered_measurements(measurements: dict, order: list[int]) -> dict:
    """measurements.json's frames, ED/ES and edited frame numbers in the DICOM phases' order (DICOM phase t =
    scene frame order[t]; numbers stay 1-based)."""
    moved = dict(measurements)
    if order == sorted(order):
        return moved
    frames = measurements.get("frames") or []
    moved["frames"] = [{**{k: v for k, v in frames[scene].items() if k != "frame"}, "frame_number": t + 1}
                       for t, scene in enumerate(order)]
    for phase in ("ed", "es"):
        index = frame_index(measurements, phase)
        moved.pop(f"{phase}_frame", None)  # an older result's 0-based key: replaced by the number
        if index is not None:
            moved[f"{phase}_frame_number"] = order.index(index) + 1
    if measurements.get("edited_frames"):
        moved["edited_frames"] = sorted(order.index(number - 1) + 1 for number in measurements["edited_frames"])
    return moved


@dataclass
class DicomSource:
    """The result's DICOM images as the backend reads them, and where the scene's frames go among them."""

    image: object  # unetgan ImageData (meta["files"]: the source files)
    mapping: GridMapping
    order: list[int]

    def from_scene(self, frames: np.ndarray) -> np.ndarray:
        """Scene arrays (T, Z, Y, X) as DICOM-grid arrays in the DICOM phases' order."""
        return self.mapping.apply(frames)[self.order]


def match_source(folder: Path, scene_frames: np.ndarray, scene_ijk_to_ras: np.ndarray, name: str) -> DicomSource:
    from unetgan.io.images import read_image

    image = read_image(folder)
    mapping = grid_mapping(scene_ijk_to_ras, scene_frames.shape[1:], image.geometry, image.frames.shape[1:])
    order = frame_order(mapping.apply(scene_frames), image.frames, name)
    return DicomSource(image, mapping, order)


def translated_frames(result) -> np.ndarray | None:
    """The translated image of every frame (T, Z, Y, X) on the input grid, None without an adapter."""
    if result.translated is None:
        return None
    sequence = getattr(result, "translated_sequence", None)
    if sequence is None:
        return array_of(result.translated)[None]
    return np.stack([array_of(sequence.GetNthDataNode(t)) for t in range(sequence.GetNumberOfDataNodes())])


def planned_names(base: str, dicom: bool, cine: bool) -> dict[str, list[str]]:
    """File names by group: "report" where matplotlib draws it, "dicom" for a volume with a DICOM source."""
    from unetgan.dicom_outputs import pdf_available

    groups = {"report": [f"{base}_report.pdf"]} if pdf_available() else {}
    if dicom:
        phases = [f"{base}_segmentation_ED.seg.dcm", f"{base}_segmentation_ES.seg.dcm"] if cine else []
        groups["dicom"] = [f"{base}_segmentation.seg.dcm", *phases, f"{base}_measurements.sr.dcm"]
    return groups


def _notes(measurements: dict) -> tuple[str | None, str | None, str]:
    """(segmenter, adapter, why that adapter) of the run, as the backend recorded them."""
    reason = (measurements.get("input") or {}).get("adapter_choice") or ""
    return measurements.get("segmenter"), measurements.get("adapter"), reason


def write_reports(result, labels: np.ndarray, folder: Path, base: str, overwrite: bool, database=None,
                  cine: bool = False) -> list[Path]:
    """Write the planned report files (see the module's description), atomically; returns them."""
    from unetgan.outputs import staged_outputs

    from .sequences import read_input

    groups = planned_names(base, has_dicom_origin(result.input), cine)
    names = [name for group in groups.values() for name in group]
    source = read_input(result.input)
    translated = translated_frames(result)
    with staged_outputs(Path(folder), names, overwrite) as staging:
        if "dicom" in groups:
            _write_dicom(result, source, labels, translated, staging, groups, database)
        elif "report" in groups:
            _write_report_without_dicom(result, source, labels, translated, staging / groups["report"][0])
    return [Path(folder) / name for name in names]


def _write_report_without_dicom(result, source, labels, translated, path: Path) -> None:
    from unetgan.dicom_outputs.algorithm import AlgorithmInfo
    from unetgan.dicom_outputs.report_pdf import report_content, write_report_pdf

    segmenter, adapter, reason = _notes(result.measurements)
    said = f"{result.input.GetName()}: not loaded from DICOM (no patient or study data)"
    content = report_content(source.frames, translated, labels, result.measurements, None,
                             AlgorithmInfo.of(segmenter, adapter), said, reason or str(adapter or "none"))
    write_report_pdf(path, content)


def _write_dicom(result, source, labels, translated, staging: Path, groups: dict, database) -> None:
    from unetgan.dicom_outputs import PDF_NAME, SEG_NAME, SR_NAME
    from unetgan.dicom_outputs.results import DicomResults
    from unetgan.dicom_outputs.seg import phase_segmentation

    name = result.input.GetName()
    with series_folder(source_files(result.input, database)) as folder:
        dicom = match_source(folder, source.frames, ijk_to_ras(source.frame_nodes[0]), name)
        measurements = reordered_measurements(result.measurements, dicom.order)
        segmenter, adapter, reason = _notes(measurements)
        moved = None if translated is None else dicom.from_scene(translated)
        results = DicomResults.of(dicom.image, dicom.from_scene(labels), moved, measurements, segmenter, adapter,
                                  reason)
        results.write(staging)  # the backend's names; renamed to this export's below
    seg, *phases, sr = groups["dicom"]
    renames = [(SEG_NAME, seg), (SR_NAME, sr)] + [(PDF_NAME, name) for name in groups.get("report", [])]
    for written, wanted in renames:
        os.replace(staging / written, staging / wanted)
    for phase_name, key in zip(phases, ("ed", "es")):
        t = frame_index(measurements, key)
        phase = phase_segmentation(results.labels[t], results.headers[t], results.algorithm, edited=results.edited)
        phase.SeriesDescription = f"LV segmentation, {key.upper()} phase {t + 1} (UnetGANSlicer)"
        phase.save_as(staging / phase_name, enforce_file_format=True)
