"""Slice views showing a cine in its own (acquired) slice plane, and their gutter.

A short-axis cine is oblique: Slicer's "Axial" view rotated to the nearest volume
axis may cut across the slices instead of along them. The page shows the
acquired plane instead: screen x = the image's column axis, screen y = minus the
row axis (row 0 at the top, as the scanner stores it), normal = the slice axis.
"""
from __future__ import annotations

import vtk
from trame_client.widgets.html import Div
from trame_slicer.app.logic import connect_slice_view_slider_to_state
from trame_slicer.app.ui.slider import Slider
from trame_vuetify.widgets.vuetify3 import VBtn, VIcon, VTooltip


def volume_plane_matrix(volume_node) -> vtk.vtkMatrix4x4:
    """Slice-to-RAS matrix of the volume's acquired plane, centred on the volume."""
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASDirectionMatrix(ijk_to_ras)
    dims = volume_node.GetImageData().GetDimensions()
    centre_ijk = [(d - 1) / 2.0 for d in dims] + [1.0]
    full = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(full)
    centre = full.MultiplyPoint(centre_ijk)
    matrix = vtk.vtkMatrix4x4()
    for row in range(3):
        matrix.SetElement(row, 0, ijk_to_ras.GetElement(row, 0))
        matrix.SetElement(row, 1, -ijk_to_ras.GetElement(row, 1))
        matrix.SetElement(row, 2, ijk_to_ras.GetElement(row, 2))
        matrix.SetElement(row, 3, centre[row])
    return matrix


def show_volume_plane(view, volume_node) -> None:
    """Orient a trame-slicer slice view to the volume's acquired plane and fit the volume in it."""
    if view is None or volume_node is None or volume_node.GetImageData() is None:
        return
    slice_node = view.get_view_node()
    slice_node.GetSliceToRAS().DeepCopy(volume_plane_matrix(volume_node))
    slice_node.UpdateMatrices()
    view.fit_view_to_content()
    view.schedule_render()


def make_slice_gutter(reset_view):
    """A gutter for the RCA slice views: "fit" (back to the acquired plane) and the slice slider.

    ``reset_view(view)`` is called by the button (trame-slicer's own reset would turn
    the view to the nearest patient axis, which cuts an oblique cine the wrong way).
    """

    def gutter(server, _view_id, view) -> None:
        with (
            Div(classes="view-gutter", style="position: absolute; top: 0; left: 0; background-color: transparent;"),
            Div(classes="view-gutter-content d-flex flex-column fill-height pa-2"),
            VBtn(size="medium", variant="text", click=lambda: reset_view(view)),
        ):
            VIcon(icon="mdi-fit-to-screen-outline", size="medium", color="white")
            VTooltip("Fit to the image plane", activator="parent", location="right")
        with Div(classes="slice-slider-gutter",
                 style="position: absolute; bottom: 0; left: 0; background-color: transparent; width: 100%;"):
            Slider(classes="slice-slider", typed_state=connect_slice_view_slider_to_state(server, view),
                   theme="dark", dense=True)

    return gutter


def link_views(scene) -> None:
    """The two views move together (slice, zoom, pan), as Slicer's linked slice views do."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        composite.SetLinkedControl(True)
        composite.SetHotLinkedControl(True)


def release_render_contexts(views) -> None:
    """Unbind the views' OpenGL contexts from the calling (worker) thread.

    Making nodes in the worker lets VTK make the views' contexts current there
    (EGL then refuses them to the loop's thread: "Unable to eglMakeCurrent"); the
    worker gives them back before it ends.
    """
    for view in views:
        window = view.render_window()
        if window.IsCurrent() and hasattr(window, "ReleaseCurrent"):
            window.ReleaseCurrent()
