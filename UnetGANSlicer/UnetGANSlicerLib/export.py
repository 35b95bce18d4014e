"""Save a result (an ``AdaptSegmentResult``) to files, without changing the scene.

Files for base name ``B`` in a folder (groups as returned by :func:`planned_files`):

- ``segmentation``: ``B.seg.nrrd`` (segment names, colours, terminology) for a volume;
  for a cine one ``.seg.nrrd`` per frame in ``B_segmentation_frames/`` (names and
  terminology of every frame);
- ``segmentation_cine`` (cines): ``B_segmentation.seq.nrrd``, the Sequences module's
  volume-sequence file of the labelmaps (1 blood pool, 2 myocardium; the cine's index
  name, unit and values; ``DataNodeClassName`` labelmap), which Slicer opens as one
  browsable labelmap cine (its ``.seq.nrrd`` writer stores volume sequences only and
  refuses a segmentation sequence);
- ``labelmap``: ``B_labelmap.nrrd``, uint8 on the input grid (1 blood pool, 2 myocardium),
  4D (T, Z, Y, X) for a cine: readable by any tool and by ``unetgan``;
- ``translated``: ``B_translated.nrrd``, or ``B_translated.seq.nrrd`` (volume sequence) for a
  cine, when an adapter was used;
- ``measurements``: ``B_measurements.csv`` (summary), ``B_volumes.csv`` (per frame) and
  ``B_measurements.json`` (the numbers as they are now, edits included; ``edited`` is true and
  ``edited_frames`` lists the frames (1-based) only where the masks differ from the backend's);
- ``report``: ``B_report.pdf``, the one-page report; ``dicom`` (a volume loaded from DICOM):
  ``B_segmentation.seg.dcm``, for a cine ``B_segmentation_ED.seg.dcm`` and
  ``B_segmentation_ES.seg.dcm``, and ``B_measurements.sr.dcm`` (see :mod:`.dicom_export`).
  They are written first, all or none: when the DICOM source cannot be used, nothing is written.

Storage nodes are created outside the scene, so saving adds no node. Existing files
are refused (:class:`OutputExists`) unless ``overwrite=True``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import slicer

from unetgan.io.images import write_image

from . import dicom_export
from .nodes import geometry_of, standalone_volume
from .results import json_default

_BASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,119}$")


class OutputExists(FileExistsError):
    """Files of the planned export already exist and overwriting was not asked for."""


def check_base_name(base: str) -> str:
    """A file base name: letters, digits, space . _ ( ) + -; no folders, no leading dot."""
    if not isinstance(base, str) or not _BASE_NAME.match(base) or base.endswith((".", " ")) or ".." in base:
        raise ValueError(f"{base!r} is not a usable file name (letters, digits, space . _ ( ) + -)")
    return base


def _is_cine(result) -> bool:
    return getattr(result, "segmentation_sequence", None) is not None


def _frame_nodes(result) -> list:
    """The input node of every frame (sequence items for a cine)."""
    if not _is_cine(result) or result.browser is None:
        return [result.input]
    sequence = result.browser.GetSequenceNode(result.input)
    return [sequence.GetNthDataNode(t) for t in range(sequence.GetNumberOfDataNodes())]


def planned_files(result, folder, base: str) -> dict[str, list[Path]]:
    check_base_name(base)
    folder = Path(folder)
    groups: dict[str, list[Path]] = {}
    if _is_cine(result):
        frames = result.segmentation_sequence.GetNumberOfDataNodes()
        groups["segmentation"] = [folder / f"{base}_segmentation_frames" / f"frame_{t + 1:03d}.seg.nrrd"
                                  for t in range(frames)]
        groups["segmentation_cine"] = [folder / f"{base}_segmentation.seq.nrrd"]
    else:
        groups["segmentation"] = [folder / f"{base}.seg.nrrd"]
    groups["labelmap"] = [folder / f"{base}_labelmap.nrrd"]
    if result.translated is not None:
        suffix = ".seq.nrrd" if _is_cine(result) else ".nrrd"
        groups["translated"] = [folder / f"{base}_translated{suffix}"]
    groups["measurements"] = [folder / f"{base}_measurements.csv", folder / f"{base}_volumes.csv",
                              folder / f"{base}_measurements.json"]
    for group, names in dicom_export.planned_names(base, dicom_export.has_dicom_origin(result.input),
                                                   _is_cine(result)).items():
        groups[group] = [folder / name for name in names]
    return groups


def existing_files(result, folder, base: str) -> list[Path]:
    return [path for group in planned_files(result, folder, base).values() for path in group if path.exists()]


def _write(storage, node, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise OSError(f"could not write {path}")
    return path


def save_result(result, folder, base: str, overwrite: bool = False, database=None) -> dict[str, list[Path]]:
    """Write every planned file; returns the groups of files written. ``database``: where the DICOM source's
    files are found (default: Slicer's DICOM database; a front end without one passes a
    :class:`~UnetGANSlicerLib.vendor.FolderDicomIndex`)."""
    from . import editing

    plan = planned_files(result, folder, base)
    existing = [path for group in plan.values() for path in group if path.exists()]
    if existing and not overwrite:
        raise OutputExists(f"{len(existing)} file(s) exist already, e.g. {existing[0]}")
    Path(folder).mkdir(parents=True, exist_ok=True)
    editing.commit_current_frame(result)  # edits of the frame on screen go into the sequence first
    references = _frame_nodes(result)

    labels = editing.segmentation_labels(result)
    editing.apply_edits(result, labels)  # the numbers, "edited" and the warnings of the masks as they are now
    dicom_export.write_reports(result, labels, Path(folder), base, overwrite, database, _is_cine(result))
    if _is_cine(result):
        _write(slicer.vtkMRMLVolumeSequenceStorageNode(), labelmap_sequence(result, labels, references),
               plan["segmentation_cine"][0])
        for t, path in enumerate(plan["segmentation"]):
            _write(slicer.vtkMRMLSegmentationStorageNode(), result.segmentation_sequence.GetNthDataNode(t), path)
    else:
        _write(slicer.vtkMRMLSegmentationStorageNode(), result.segmentation, plan["segmentation"][0])

    write_image(labels if _is_cine(result) else labels[0], geometry_of(references[0]), plan["labelmap"][0])

    if "translated" in plan:
        if _is_cine(result):
            _write(slicer.vtkMRMLVolumeSequenceStorageNode(), result.translated_sequence, plan["translated"][0])
        else:
            storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
            storage.SetUseCompression(True)
            _write(storage, result.translated, plan["translated"][0])

    summary_csv, frames_csv, measurements_json = plan["measurements"]
    _write(slicer.vtkMRMLTableStorageNode(), result.table, summary_csv)
    _write(slicer.vtkMRMLTableStorageNode(), result.frames_table, frames_csv)
    measurements_json.write_text(json.dumps(result.measurements, indent=1, default=json_default), encoding="utf-8")
    # the table writer adds a .schema.csv beside each table: report it as written
    plan["measurements"] += [p.with_suffix(".schema.csv") for p in (summary_csv, frames_csv)
                             if p.with_suffix(".schema.csv").exists()]
    return plan


def labelmap_sequence(result, labels: np.ndarray, references: list):
    """A labelmap volume sequence outside the scene: frame t's labels on input frame t's grid, same index values."""
    source = result.segmentation_sequence
    sequence = slicer.vtkMRMLSequenceNode()
    sequence.SetIndexName(source.GetIndexName())
    sequence.SetIndexUnit(source.GetIndexUnit())
    sequence.SetIndexType(source.GetIndexType())
    for t, reference in enumerate(references):
        item = standalone_volume(labels[t], reference, "vtkMRMLLabelMapVolumeNode")
        sequence.SetDataNodeAtValue(item, source.GetNthIndexValue(t))
    return sequence
