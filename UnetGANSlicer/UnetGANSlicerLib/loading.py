"""Images into the scene the way Slicer loads them (for front ends without Slicer's DICOM/Data modules).

- a 3D volume becomes a scalar volume node;
- a cine (T, Z, Y, X) becomes a volume sequence played by a sequence browser;
  the browser's proxy volume is what the user selects and what
  :func:`UnetGANSlicerLib.adapt_and_segment` takes.

Files and DICOM folders are read by the backend (``unetgan.io.images.read_image``:
NIfTI, NRRD, MHA 3D/4D, DICOM cine folders sorted by trigger time), so the web
page reads exactly what the command line reads. Geometry goes through
:func:`UnetGANSlicerLib.nodes.set_geometry` (LPS -> RAS), the layer's one conversion.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import slicer

from unetgan.errors import InputError
from unetgan.io.images import Geometry, read_image

from .context import module_logic, scene_of
from .nodes import remove_nodes, set_geometry, unique_name
from .vendor import INSTANCE_UIDS_ATTRIBUTE, DicomFileIndex


@dataclass
class LoadedImage:
    """What :func:`add_image` / :func:`load_image` put in the scene."""

    volume: object  # the volume node to process (a cine's proxy node)
    sequence: object | None = None
    browser: object | None = None
    n_frames: int = 1
    warnings: list = field(default_factory=list)  # the reader's (e.g. an sform orthonormal only to rounding)
    dicom_index: object | None = None  # DICOM input: its files by SOP instance UID (see record_dicom_origin)

    @property
    def is_cine(self) -> bool:
        return self.sequence is not None

    @property
    def nodes(self) -> list:
        """Every node added, oldest first (``nodes.remove_nodes`` removes them newest first: browser first)."""
        return [n for n in (self.volume, self.sequence, self.browser) if n is not None]


def image_name(path: str | os.PathLike) -> str:
    """A node name from a file or folder name: ``case.nii.gz`` -> ``case``."""
    name = Path(path).name
    for suffix in (".nii.gz", ".seq.nrrd", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "volume"
    return name or "volume"


def _index_values(n_frames: int, trigger_times_ms) -> tuple[list[str], str, str]:
    """Sequence index values: trigger times in ms when known (and distinct), else frame numbers."""
    if trigger_times_ms is not None and len(trigger_times_ms) == n_frames:
        values = [f"{float(t):g}" for t in trigger_times_ms]
        if len(set(values)) == n_frames:
            return values, "time", "ms"
    return [str(t + 1) for t in range(n_frames)], "frame", ""


def add_image(frames: np.ndarray, geometry: Geometry, name: str, scene=None,
              trigger_times_ms=None) -> LoadedImage:
    """Add a volume (Z, Y, X) or a cine (T, Z, Y, X; T > 1) in the backend's LPS geometry to the scene."""
    scene = scene or scene_of(None)
    array = np.asarray(frames)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (3, 4):
        raise InputError(f"expected a 3D volume or a 4D cine, got an array of shape {array.shape}")
    if array.ndim == 3:
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", unique_name(scene, name))
        set_geometry(node, geometry)
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
        node.CreateDefaultDisplayNodes()
        return LoadedImage(volume=node)

    values, index_name, index_unit = _index_values(array.shape[0], trigger_times_ms)
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", unique_name(scene, f"{name} sequence"))
    sequence.SetIndexName(index_name)
    sequence.SetIndexUnit(index_unit)
    sequence.SetIndexType(sequence.NumericIndex)
    for frame, value in zip(array, values):
        item = slicer.vtkMRMLScalarVolumeNode()
        set_geometry(item, geometry)
        slicer.util.updateVolumeFromArray(item, np.ascontiguousarray(frame))
        sequence.SetDataNodeAtValue(item, value)
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", unique_name(scene, f"{name} browser"))
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.SetSelectedItemNumber(0)
    module_logic("sequences").UpdateProxyNodesFromSequences(browser)
    proxy = browser.GetProxyNode(sequence)
    if proxy is None:
        scene.RemoveNode(browser)
        scene.RemoveNode(sequence)
        raise RuntimeError("the sequence browser made no proxy volume")
    proxy.SetName(unique_name(scene, name))
    if proxy.GetDisplayNode() is None:
        proxy.CreateDefaultDisplayNodes()
    return LoadedImage(volume=proxy, sequence=sequence, browser=browser, n_frames=int(array.shape[0]))


def load_image(path: str | os.PathLike, scene=None, name: str | None = None) -> LoadedImage:
    """Read an image file (3D/4D NIfTI, NRRD, MHA) or a DICOM cine folder into the scene.

    Raises ``unetgan.errors.InputError`` with a readable message for anything unusable.
    """
    image = read_image(path)
    loaded = add_image(image.array, image.geometry, name or image_name(path), scene,
                       trigger_times_ms=image.trigger_times_ms)
    loaded.warnings = list(image.meta.get("warnings", []))
    record_dicom_origin(loaded, image)
    return loaded


def record_dicom_origin(loaded: LoadedImage, image) -> None:
    """For an image read from DICOM: each frame's SOP instance UIDs on its node, as Slicer's DICOM module records
    them, and ``loaded.dicom_index`` (the files by UID, the DICOM database of a front end without Slicer's),
    so that Export can write the DICOM SEG and SR (:mod:`.dicom_export`)."""
    grid = image.meta.get("files")  # [z][t] -> path
    if not grid:
        return
    loaded.dicom_index = DicomFileIndex(path for row in grid for path in row)
    uid_of = {path: uid for uid, path in loaded.dicom_index.files.items()}
    nodes = ([loaded.sequence.GetNthDataNode(t) for t in range(loaded.sequence.GetNumberOfDataNodes())]
             if loaded.is_cine else [loaded.volume])
    for t, node in enumerate(nodes):
        node.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, " ".join(uid_of[row[t]] for row in grid))


def remove_image(loaded: LoadedImage) -> None:
    """Remove what :func:`add_image` added: browser, sequence and proxy, with their display and storage nodes."""
    remove_nodes(loaded.nodes)
