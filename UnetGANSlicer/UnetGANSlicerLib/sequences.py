"""Cine MRI as Slicer sequences: read every frame, write results as synchronized sequences.

A cine arrives as a ``vtkMRMLSequenceNode`` of volumes played by a
``vtkMRMLSequenceBrowserNode``; the volume the user selects is the browser's
proxy node. Every item of its sequence is processed (not only the one shown).
Results become new sequences with the same index values, synchronized in the
same browser, so they play with the cine; the segmentation sequence saves the
proxy's changes back to the current item, so Segment Editor edits are kept
frame by frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import slicer

from unetgan.errors import InputError
from unetgan.io.images import Geometry

from .context import module_logic
from .nodes import array_of, geometry_of, remove_nodes, same_grid, standalone_volume, unique_name
from .segmentation import new_segmentation_node


@dataclass
class InputFrames:
    """The voxels of a volume node or of every item of its cine, with the geometry shared by all frames."""

    node: object  # the volume node the user selected (the proxy, for a cine)
    frames: np.ndarray  # (T, Z, Y, X), a copy
    geometry: Geometry  # LPS, for the backend
    frame_nodes: list = field(default_factory=list)  # per frame: the node whose grid the outputs take
    browser: object | None = None
    sequence: object | None = None
    index_values: list[str] = field(default_factory=list)

    @property
    def is_cine(self) -> bool:
        return self.sequence is not None

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


def find_cine(volume_node):
    """(browser, sequence) when the node is the proxy of a volume sequence, else (None, None)."""
    if volume_node is None or volume_node.GetScene() is None:
        return None, None
    modules = getattr(slicer, "modules", None)
    if modules is None or getattr(modules, "sequences", None) is None:
        return None, None
    browser = module_logic("sequences").GetFirstBrowserNodeForProxyNode(volume_node)
    if browser is None:
        return None, None
    sequence = browser.GetSequenceNode(volume_node)
    if sequence is None or sequence.GetNumberOfDataNodes() == 0:
        return None, None
    return browser, sequence


def read_input(volume_node) -> InputFrames:
    """Copy the voxels of a volume, or of every frame of the cine it is the proxy of."""
    if volume_node is None:
        raise InputError("no input volume selected")
    if not volume_node.IsA("vtkMRMLScalarVolumeNode") or volume_node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"{volume_node.GetName()!r} is not a grey-level scalar volume")
    browser, sequence = find_cine(volume_node)
    if sequence is None:
        return InputFrames(volume_node, array_of(volume_node)[None], geometry_of(volume_node), [volume_node])
    items = [sequence.GetNthDataNode(i) for i in range(sequence.GetNumberOfDataNodes())]
    first = items[0]
    for number, item in enumerate(items):
        if item is None or not item.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(f"item {number + 1} of sequence {sequence.GetName()!r} is not a scalar volume")
        if not same_grid(first, item):
            raise InputError(
                f"the frames of {sequence.GetName()!r} are not on one voxel grid (frame {number + 1} differs "
                "from frame 1); resample them to a common grid first"
            )
    frames = np.stack([array_of(item) for item in items])
    index_values = [sequence.GetNthIndexValue(i) for i in range(len(items))]
    return InputFrames(volume_node, frames, geometry_of(first), items, browser, sequence, index_values)


def new_sequence(scene, name: str, like):
    """An empty sequence node with ``like``'s index name, unit and type."""
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", unique_name(scene, name))
    sequence.SetIndexName(like.GetIndexName())
    sequence.SetIndexUnit(like.GetIndexUnit())
    sequence.SetIndexType(like.GetIndexType())
    sequence.SetNumericIndexValueTolerance(like.GetNumericIndexValueTolerance())
    return sequence


def fill_volume_sequence(sequence, frames: np.ndarray, source: InputFrames, cancel=None) -> None:
    """Item t = frames[t] on the grid of input frame t, at the input's index value t."""
    for t, index_value in enumerate(source.index_values):
        _check(cancel)
        sequence.SetDataNodeAtValue(standalone_volume(frames[t], source.frame_nodes[t]), index_value)


def fill_segmentation_sequence(sequence, labels: np.ndarray, source: InputFrames, cancel=None) -> None:
    """Item t = segmentation of labels[t], referencing input frame t's grid."""
    for t, index_value in enumerate(source.index_values):
        _check(cancel)
        sequence.SetDataNodeAtValue(new_segmentation_node(labels[t], source.frame_nodes[t]), index_value)


def attach(browser, sequence, save_changes: bool = False):
    """Synchronize ``sequence`` in ``browser`` and return its proxy node (created by the sequences logic)."""
    browser.AddSynchronizedSequenceNode(sequence)
    browser.SetSaveChanges(sequence, bool(save_changes))
    module_logic("sequences").UpdateProxyNodesFromSequences(browser)
    proxy = browser.GetProxyNode(sequence)
    if proxy is None:
        raise RuntimeError(f"the sequence browser made no proxy node for {sequence.GetName()!r}")
    if proxy.IsA("vtkMRMLDisplayableNode") and proxy.GetDisplayNode() is None:
        proxy.CreateDefaultDisplayNodes()
    return proxy


def detach(browser, sequence) -> None:
    """Undo :func:`attach`: unsynchronize ``sequence`` and remove the proxy node made for it."""
    if browser is None or sequence is None or sequence.GetID() is None:
        return
    proxy = browser.GetProxyNode(sequence)
    if browser.IsSynchronizedSequenceNodeID(sequence.GetID()):
        browser.RemoveSynchronizedSequenceNode(sequence.GetID())
    if proxy is not None:
        remove_nodes([proxy])


def _check(cancel):
    if cancel is not None and cancel():
        from unetgan.errors import Cancelled

        raise Cancelled("cancelled by the user")
