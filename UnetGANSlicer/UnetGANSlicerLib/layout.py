"""Show a result: original (Red) | translated (Yellow) in the acquisition plane, above a volume curve.

Everything here works on MRML nodes (the layout node, slice nodes, slice composite
nodes, plot nodes), so it runs the same inside the Slicer application and on a
``slicer-core`` scene whose views were made as the application makes them (a
``vtkMRMLLayoutLogic`` for the layout node and view nodes, one ``vtkMRMLSliceLogic``
per slice view registered in the application logic).

Why not just the built-in SideBySide layout: a layout's orientation applies only to
views it creates, so on a running Slicer the Yellow view stays Sagittal, and even an
"Axial" Red view cuts an oblique short-axis cine obliquely. Each view is therefore
turned into the volume's own slice plane (in-plane axes along the image columns and
rows, normal along the slice stack), fitted, moved onto the centre of an acquired
slice, and Yellow is put on exactly Red's slice. (``RotateToVolumePlane`` is not
enough: it keeps the view's named orientation and picks the volume axis nearest to
it, which for a strongly oblique short-axis stack can be an in-plane axis.)
"""
from __future__ import annotations

import numpy as np
import slicer

from .context import application_logic
from .nodes import direction_matrix, matrix_array, unique_name

LAYOUT_ID = 7310  # custom layouts use ids above the built-in ones (CompareVolumes uses 23)
ORIGINAL_VIEW, TRANSLATED_VIEW, CHART_VIEW = "Red", "Yellow", "UnetGANPlot"
CHART_COLUMN_X, CHART_COLUMN_Y = "Frame", "Blood pool"
LAYOUT_XML = f"""<layout type="vertical" split="true">
 <item splitSize="700"><layout type="horizontal">
  <item><view class="vtkMRMLSliceNode" singletontag="{ORIGINAL_VIEW}">
   <property name="orientation" action="default">Axial</property>
   <property name="viewlabel" action="default">R</property>
   <property name="viewcolor" action="default">#F34A33</property>
  </view></item>
  <item><view class="vtkMRMLSliceNode" singletontag="{TRANSLATED_VIEW}">
   <property name="orientation" action="default">Axial</property>
   <property name="viewlabel" action="default">Y</property>
   <property name="viewcolor" action="default">#EDD54C</property>
  </view></item>
 </layout></item>
 <item splitSize="300"><view class="vtkMRMLPlotViewNode" singletontag="{CHART_VIEW}">
  <property name="viewlabel" action="default">P</property>
 </view></item>
</layout>"""
VIEW_ROLES = {ORIGINAL_VIEW: "original (as acquired)", TRANSLATED_VIEW: "translated (what the segmenter saw)"}


def layout_node(scene):
    """The scene's layout node (a singleton the application, or a vtkMRMLLayoutLogic, creates)."""
    return scene.GetFirstNodeByClass("vtkMRMLLayoutNode")


def register_layout(scene) -> bool:
    """Add the result layout's description to the layout node (once). False when the scene has no layout node."""
    node = layout_node(scene)
    if node is None:
        return False
    if not node.IsLayoutDescription(LAYOUT_ID):
        node.AddLayoutDescription(LAYOUT_ID, LAYOUT_XML)
        if node.GetViewArrangement() == LAYOUT_ID:  # a scene saved with this layout was opened first: show it now
            node.SetLayoutDescription(LAYOUT_ID, LAYOUT_XML)
            node.SetViewArrangement(LAYOUT_ID)
    return True


def view_nodes(layout_name: str):
    """(slice node, slice composite node, slice logic) of a slice view, from the application logic."""
    app_logic = application_logic()
    logic = app_logic.GetSliceLogicByLayoutName(layout_name) if app_logic is not None else None
    if logic is None:
        return None, None, None
    return logic.GetSliceNode(), logic.GetSliceCompositeNode(), logic


def acquisition_plane(volume) -> np.ndarray:
    """3x3 slice axes in RAS that show the volume as acquired: x along the image columns (I), y up the
    rows (-J, so row 0 is at the top, as the scanner displays it), normal x * y (+-K, the slice stack)."""
    directions = direction_matrix(volume)
    x_axis, y_axis = directions[:, 0], -directions[:, 1]
    return np.column_stack([x_axis, y_axis, np.cross(x_axis, y_axis)])


def snap_to_slice(slice_node, volume) -> None:
    """Move the view along its normal onto the centre of the nearest acquired slice (no in-between slice)."""
    import vtk

    slice_to_ras = slice_node.GetSliceToRAS()
    origin = matrix_array(slice_to_ras)[:3, 3]
    ras_to_ijk, ijk_to_ras = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    volume.GetRASToIJKMatrix(ras_to_ijk)
    volume.GetIJKToRASMatrix(ijk_to_ras)
    ijk = np.array(ras_to_ijk.MultiplyPoint([*origin, 1.0])[:3])
    ijk[2] = min(max(round(ijk[2]), 0), volume.GetImageData().GetDimensions()[2] - 1)
    target = np.array(ijk_to_ras.MultiplyPoint([*ijk, 1.0])[:3])
    normal = matrix_array(slice_to_ras)[:3, 2]
    moved = origin + float((target - origin) @ normal) * normal
    for row in range(3):
        slice_to_ras.SetElement(row, 3, moved[row])
    slice_node.UpdateMatrices()


def show_in_acquisition_plane(layout_name: str, volume, fit: bool = True) -> bool:
    """Make ``volume`` the background of the view and turn the view into the volume's slice plane,
    fitted and on the centre of an acquired slice."""
    slice_node, composite, logic = view_nodes(layout_name)
    if slice_node is None:
        return False
    composite.SetBackgroundVolumeID(volume.GetID())
    axes = acquisition_plane(volume)
    slice_to_ras = slice_node.GetSliceToRAS()
    for row in range(3):
        for column in range(3):
            slice_to_ras.SetElement(row, column, axes[row, column])
    slice_node.UpdateMatrices()
    if fit:
        logic.FitSliceToVolume(volume, *slice_node.GetDimensions()[:2])  # field of view and centre
    snap_to_slice(slice_node, volume)
    return True


def copy_slice(source_name: str, target_name: str) -> bool:
    """Put the target view on exactly the source view's plane, slice and field of view."""
    source, _, _ = view_nodes(source_name)
    target, _, _ = view_nodes(target_name)
    if source is None or target is None:
        return False
    was_modifying = target.StartModify()
    target.GetSliceToRAS().DeepCopy(source.GetSliceToRAS())
    target.SetFieldOfView(*source.GetFieldOfView())
    target.SetXYZOrigin(*source.GetXYZOrigin())
    target.UpdateMatrices()
    target.EndModify(was_modifying)
    return True


def link_views(*layout_names: str) -> None:
    """Linked slice controls (same slice, zoom and pan in every linked view), as the view menu's link button does."""
    for name in layout_names:
        _, composite, _ = view_nodes(name)
        if composite is not None:
            composite.SetLinkedControl(True)


def show_segmentation(segmentation, layout_names) -> None:
    """The segmentation outlined/filled in exactly these views (Segment Editor may have changed its view list)."""
    display = segmentation.GetDisplayNode() if segmentation is not None else None
    if display is None:
        return
    display.SetVisibility(True)
    display.SetAllSegmentsVisibility(True)
    display.RemoveAllViewNodeIDs()  # shown in all views


def add_volume_chart(scene, frames_table, name: str):
    """A plot chart of the per-frame blood-pool volume (the frames table's columns, so it follows edits)."""
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", unique_name(scene, f"{name} blood pool"))
    series.SetAndObserveTableNodeID(frames_table.GetID())
    series.SetXColumnName(CHART_COLUMN_X)
    series.SetYColumnName(CHART_COLUMN_Y)
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
    series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
    series.SetColor(0.85, 0.25, 0.25)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", unique_name(scene, name))
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle("LV blood-pool volume per frame")
    chart.SetXAxisTitle("frame")
    chart.SetYAxisTitle("blood pool (mL)")
    chart.SetLegendVisibility(False)
    return chart, series


def show_chart(scene, chart) -> bool:
    """Show the chart in the result layout's plot view."""
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLPlotViewNode")):
        view = scene.GetNthNodeByClass(index, "vtkMRMLPlotViewNode")
        if view.GetLayoutName() == CHART_VIEW:
            view.SetPlotChartNodeID(chart.GetID())
            return True
    return False


def show_side_by_side(original, translated=None, segmentation=None, chart=None) -> bool:
    """Switch to the result layout: original | translated (or the original twice), both in the
    acquisition plane on the same slice, linked, the segmentation in both, the chart below.

    Returns False (and changes nothing) when the scene has no layout node or no slice views.
    """
    scene = original.GetScene()
    if scene is None or not register_layout(scene):
        return False
    layout_node(scene).SetViewArrangement(LAYOUT_ID)
    right = translated if translated is not None else original
    if not show_in_acquisition_plane(ORIGINAL_VIEW, original):
        return False
    show_in_acquisition_plane(TRANSLATED_VIEW, right, fit=False)
    copy_slice(ORIGINAL_VIEW, TRANSLATED_VIEW)
    for name in VIEW_ROLES:
        composite = view_nodes(name)[1]
        if composite is not None:
            composite.SetForegroundVolumeID(None)
            composite.SetLabelVolumeID(None)
    link_views(*VIEW_ROLES)
    show_segmentation(segmentation, VIEW_ROLES)
    if chart is not None:
        show_chart(scene, chart)
    return True


def render_view(layout_name: str) -> np.ndarray | None:
    """The image a slice view shows (background, foreground and label layers blended by Slicer's slice
    logic), RGBA (rows, columns, 4) uint8 with row 0 at the top; None without such a view."""
    from vtk.util.numpy_support import vtk_to_numpy

    logic = view_nodes(layout_name)[2]
    connection = logic.GetImageDataConnection() if logic is not None else None
    if connection is None:
        return None
    producer = connection.GetProducer()
    producer.Update()
    image = producer.GetOutputDataObject(connection.GetIndex())
    columns, rows, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(rows, columns, -1)
    return np.ascontiguousarray(pixels[::-1])  # VTK's row 0 is the bottom


def view_backgrounds() -> dict[str, str | None]:
    """Background volume ID of each result view (what is shown where)."""
    return {name: (view_nodes(name)[1].GetBackgroundVolumeID() if view_nodes(name)[1] is not None else None)
            for name in VIEW_ROLES}


def translated_role(source_vendor: str | None = None) -> str:
    """The right view's role in plain words: "translated to the Philips look (what the segmenter saw)"."""
    if not source_vendor:
        return VIEW_ROLES[TRANSLATED_VIEW]
    return f"translated to the {source_vendor} look (what the segmenter saw)"


def view_roles_text(original, translated=None, source_vendor: str | None = None) -> str:
    """What the panel says about the views; source_vendor: the scanner vendor the segmenter learnt from."""
    left = f"Left (Red): {original.GetName()}, {VIEW_ROLES[ORIGINAL_VIEW]}"
    if translated is None:
        return left + "; right (Yellow): the same image (no adapter was used)"
    return left + f"; right (Yellow): {translated.GetName()}, {translated_role(source_vendor)}"


def show_volume(volume) -> bool:
    """Make ``volume`` the background of every slice view, fitted (what Sample Data does with what it loads).
    False (nothing changed) when there are no slice views (a script, the web page's scene)."""
    app_logic = application_logic()
    logics = app_logic.GetSliceLogics() if app_logic is not None and volume is not None else None
    if logics is None or logics.GetNumberOfItems() == 0:
        return False
    for i in range(logics.GetNumberOfItems()):
        logic = logics.GetItemAsObject(i)
        logic.GetSliceCompositeNode().SetBackgroundVolumeID(volume.GetID())
        logic.FitSliceToBackground()
    return True