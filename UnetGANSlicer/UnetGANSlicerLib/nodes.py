"""Volume nodes <-> numpy arrays + geometry, with exact IJK-to-RAS handling.

Slicer stores volume geometry in RAS (spacing, origin and the IJK-to-RAS axis
directions); SimpleITK/ITK and the backend (``unetgan.io.images.Geometry``) use LPS.
The two differ by ``diag(-1, -1, 1)`` applied to the origin and to the direction
matrix (whose columns are the I, J, K axis directions). Arrays from
``slicer.util.arrayFromVolume`` are (K, J, I) = (Z, Y, X), the backend's order.

New nodes get their geometry copied from the input node itself (spacing, origin,
direction matrix), never through a file or an LPS round trip, so it is bit-identical.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np
import slicer
import vtk

from unetgan.errors import InputError
from unetgan.io.images import Geometry

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])  # its own inverse


def direction_matrix(node) -> np.ndarray:
    """The node's 3x3 IJK-to-RAS direction matrix (columns: I, J, K axes in RAS)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])


def matrix_array(matrix) -> np.ndarray:
    """A vtkMatrix4x4 as a 4x4 numpy array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix_array(matrix)


def geometry_of(node) -> Geometry:
    """The node's geometry in the backend's LPS convention."""
    direction_lps = LPS_TO_RAS @ direction_matrix(node)
    origin_lps = LPS_TO_RAS @ np.asarray(node.GetOrigin(), dtype=float)
    return Geometry(tuple(node.GetSpacing()), tuple(origin_lps), tuple(direction_lps.ravel()))


def set_geometry(node, geometry: Geometry) -> None:
    """Place a volume node from a backend (LPS) geometry."""
    direction_ras = LPS_TO_RAS @ np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    origin_ras = LPS_TO_RAS @ np.asarray(geometry.origin, dtype=float)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, direction_ras[r, c])
    node.SetIJKToRASDirectionMatrix(matrix)
    node.SetSpacing(*geometry.spacing)
    node.SetOrigin(*origin_ras)


def copy_geometry(source, target) -> None:
    """Spacing, origin and directions of ``source`` onto ``target``, exactly."""
    matrix = vtk.vtkMatrix4x4()
    source.GetIJKToRASDirectionMatrix(matrix)
    target.SetIJKToRASDirectionMatrix(matrix)
    target.SetSpacing(source.GetSpacing())
    target.SetOrigin(source.GetOrigin())


def same_grid(a, b, tolerance: float = 1e-6) -> bool:
    """Same voxel grid: dimensions and IJK-to-RAS matrix (to ``tolerance`` mm)."""
    da, db = a.GetImageData(), b.GetImageData()
    if da is None or db is None or tuple(da.GetDimensions()) != tuple(db.GetDimensions()):
        return False
    return bool(np.allclose(ijk_to_ras(a), ijk_to_ras(b), atol=tolerance, rtol=0))


def array_of(node) -> np.ndarray:
    """A copy of the node's voxels, (Z, Y, X); the node is not touched."""
    image = node.GetImageData() if node is not None else None
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise InputError(f"volume {node.GetName() if node else None!r} has no voxels")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(
            f"volume {node.GetName()!r} has {image.GetNumberOfScalarComponents()} components per voxel; "
            "expected a grey-level MRI (load a cine as a sequence, not as a multi-component volume)"
        )
    return np.array(slicer.util.arrayFromVolume(node), copy=True)


def fingerprint(node) -> str:
    """SHA256 of a volume node's voxels and IJK-to-RAS matrix (to show it was not modified)."""
    digest = hashlib.sha256(np.ascontiguousarray(slicer.util.arrayFromVolume(node)).tobytes())
    digest.update(ijk_to_ras(node).tobytes())
    return digest.hexdigest()


def unique_name(scene, base: str) -> str:
    """``base``, or ``base (2)``, ``base (3)`` ... whichever no node of the scene has yet."""
    if scene.GetFirstNodeByName(base) is None:
        return base
    number = 2
    while scene.GetFirstNodeByName(f"{base} ({number})") is not None:
        number += 1
    return f"{base} ({number})"


def standalone_volume(array: np.ndarray, geometry_source, class_name: str = "vtkMRMLScalarVolumeNode"):
    """A volume node outside any scene (e.g. a sequence item), on ``geometry_source``'s grid."""
    node = getattr(slicer, class_name)()
    copy_geometry(geometry_source, node)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    return node


def add_volume(scene, name: str, array: np.ndarray, geometry_source, class_name: str = "vtkMRMLScalarVolumeNode"):
    """A new volume node in the scene (unique name, display node) on ``geometry_source``'s grid."""
    node = scene.AddNewNodeByClass(class_name, unique_name(scene, name))
    with removed_on_error(node):
        copy_geometry(geometry_source, node)
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
        node.CreateDefaultDisplayNodes()
        follow_reference(node, geometry_source)
    return node


@contextmanager
def removed_on_error(node):
    """Remove ``node`` from its scene if the block raises (a half-made node never stays behind)."""
    try:
        yield node
    except BaseException:
        remove_nodes([node])
        raise


def follow_reference(node, reference) -> None:
    """Put ``node`` under the same parent transform and subject-hierarchy folder as ``reference``."""
    transform_id = reference.GetTransformNodeID() if hasattr(reference, "GetTransformNodeID") else None
    if transform_id and hasattr(node, "SetAndObserveTransformNodeID"):
        node.SetAndObserveTransformNodeID(transform_id)
    scene = node.GetScene()
    if scene is None or reference.GetScene() is not scene:
        return
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is None:
        return
    invalid = hierarchy.GetInvalidItemID()
    reference_item = hierarchy.GetItemByDataNode(reference)
    item = hierarchy.GetItemByDataNode(node)
    if reference_item == invalid or item == invalid:
        return
    parent = hierarchy.GetItemParent(reference_item)
    if parent != invalid:
        hierarchy.SetItemParent(item, parent)


def remove_nodes(nodes) -> None:
    """Remove nodes with their display and storage nodes (newest first)."""
    for node in reversed([n for n in nodes if n is not None]):
        scene = node.GetScene()
        if scene is None:
            continue
        attached = []
        for getter, counter in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
                                ("GetNthStorageNode", "GetNumberOfStorageNodes")):
            if hasattr(node, counter):
                attached += [getattr(node, getter)(i) for i in range(getattr(node, counter)())]
        scene.RemoveNode(node)
        for extra in attached:
            if extra is not None and extra.GetScene() is scene:
                scene.RemoveNode(extra)
