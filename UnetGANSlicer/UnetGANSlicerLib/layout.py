"""Show a result side by side: original (Red) | translated (Yellow), segmentation in both.

Only inside the Slicer application (there is a layout manager); elsewhere
(slicer-core, no ``slicer.app``) the functions return False and do nothing.
"""
from __future__ import annotations

import slicer

from .context import in_slicer_app


def show_side_by_side(original, translated=None, segmentation=None) -> bool:
    if not in_slicer_app():
        return False
    layout_manager = slicer.app.layoutManager()
    if layout_manager is None:
        return False
    right = translated if translated is not None else original
    if translated is not None:
        layout_manager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    for view, volume in (("Red", original), ("Yellow", right)):
        widget = layout_manager.sliceWidget(view)
        if widget is None:
            continue
        composite = widget.sliceLogic().GetSliceCompositeNode()
        composite.SetBackgroundVolumeID(volume.GetID())
        composite.SetLinkedControl(True)
        widget.sliceLogic().FitSliceToAll()
    if segmentation is not None and segmentation.GetDisplayNode() is not None:
        segmentation.GetDisplayNode().SetVisibility(True)
        segmentation.GetDisplayNode().SetAllSegmentsVisibility(True)
    return True


def show_volume(volume) -> bool:
    """Make ``volume`` the background of every slice view (no-op outside Slicer)."""
    if not in_slicer_app() or volume is None:
        return False
    slicer.util.setSliceViewerLayers(background=volume, fit=True)
    return True
