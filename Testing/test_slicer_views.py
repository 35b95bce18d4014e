"""What a radiologist sees after a run, on a real slicer-core scene whose views are made as the
application makes them (UnetGANSlicerLib.context.add_views: a vtkMRMLLayoutLogic for the layout
node and view nodes, one vtkMRMLSliceLogic per slice view registered in the application logic, as
qSlicerLayoutManager does for every slice widget): the result layout, the chart following the
tables, the layout registered at startup, Sample Data shown, the Segment Editor hand-off.
"""
from __future__ import annotations

import numpy as np
import pytest
import slicer
import vtk

from unetgan.io.images import Geometry
from unetgan.measurements import cine_measurements
from UnetGANSlicerLib import context, editing, layout, loading
from UnetGANSlicerLib import sequences as seq
from UnetGANSlicerLib.measurements import table_rows
from UnetGANSlicerLib.nodes import direction_matrix
from UnetGANSlicerLib.workflow import add_result_nodes

N_PHASES, N_SLICES, MATRIX = 3, 4, 64


@pytest.fixture(scope="module")
def study():
    from unetgan.phantom import make_study

    return make_study("Siemens", seed=0, n_phases=N_PHASES, n_slices=N_SLICES, matrix=MATRIX)


@pytest.fixture
def app_scene():
    logics = context.add_views(context.setup_standalone())
    yield logics
    context.remove_views(logics)
    logics["scene"].Clear(True)


def strongly_oblique_direction() -> tuple:
    """The orientation (LPS, columns I, J, K) of a real GE short-axis series here (Sunnybrook SCD0000101):
    its rows run nearly head-feet, so turning a view to the "nearest" volume plane
    (RotateToVolumePlane from a named orientation) cuts across the slices instead of along them."""
    return (-0.1046, -0.7332, -0.6719, 0.3464, -0.6602, 0.6665, -0.9322, -0.1630, 0.3230)


def cine_result(scene, study, translated=True, direction=None, name="cine", warnings=()):
    """The phantom cine loaded as Slicer loads one, and a result made from its true labels (no backend run):
    (loaded image, labels (T, Z, Y, X), result)."""
    geometry = Geometry(study.spacing, study.origin, direction or study.direction)
    loaded = loading.add_image(study.image, geometry, name, scene, study.trigger_times_ms)
    labels = np.where(np.isin(study.labels, (1, 2)), study.labels, 0).astype(np.uint8)
    measurements = cine_measurements(labels, float(np.prod(study.spacing)) / 1000.0)
    measurements["warnings"] = list(warnings)
    result = add_result_nodes(seq.read_input(loaded.volume), labels, measurements,
                              translated=np.sqrt(study.image) if translated else None)  # a visibly different look
    return loaded, labels, result


def slice_to_ras(name) -> np.ndarray:
    node = layout.view_nodes(name)[0]
    matrix = node.GetSliceToRAS()
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


@pytest.mark.parametrize("oblique", ["phantom", "strongly oblique"])
def test_result_views_show_the_acquisition_plane_on_the_same_slice(app_scene, study, oblique):
    scene = app_scene["scene"]
    loaded, _labels, result = cine_result(scene, study, direction=strongly_oblique_direction() if oblique != "phantom" else None)
    k_axis = direction_matrix(loaded.volume)[:, 2]
    assert max(abs(k_axis)) < 0.99, "the phantom's short-axis stack must be oblique for this test to mean something"
    # a running Slicer: Yellow is Sagittal and the user has looked elsewhere
    layout.view_nodes("Yellow")[0].SetOrientationToSagittal()
    layout.view_nodes("Red")[0].SetOrientationToCoronal()

    assert layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)

    layout_node = layout.layout_node(scene)
    assert layout_node.GetViewArrangement() == layout.LAYOUT_ID
    for name in ("Red", "Yellow"):
        matrix = slice_to_ras(name)
        normal = matrix[:3, 2] / np.linalg.norm(matrix[:3, 2])
        assert abs(float(normal @ k_axis)) == pytest.approx(1.0, abs=1e-6), name  # the acquisition plane
        # in-plane axes along the image rows and columns: no oblique resampling of the acquired pixels
        in_plane = direction_matrix(loaded.volume)[:, :2]
        for axis in (matrix[:3, 0], matrix[:3, 1]):
            assert max(abs(axis @ in_plane)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(slice_to_ras("Yellow"), slice_to_ras("Red"), atol=1e-9)  # the same slice
    assert layout.view_nodes("Yellow")[0].GetFieldOfView() == pytest.approx(layout.view_nodes("Red")[0].GetFieldOfView())
    # the slice plane passes through voxel centres of one acquired slice
    ras_to_ijk = vtk.vtkMatrix4x4()
    loaded.volume.GetRASToIJKMatrix(ras_to_ijk)
    k = ras_to_ijk.MultiplyPoint([*slice_to_ras("Red")[:3, 3], 1.0])[2]
    assert k == pytest.approx(round(k), abs=1e-6) and 0 <= round(k) < N_SLICES
    # the field of view holds the whole image
    fov = layout.view_nodes("Red")[0].GetFieldOfView()
    extent_mm = np.array(study.image.shape[:1:-1]) * np.array(study.spacing[:2])
    assert max(fov[:2]) >= max(extent_mm) - 0.05  # (the real orientation is given to 4 digits)
    # what is where
    assert layout.view_backgrounds() == {"Red": result.input.GetID(), "Yellow": result.translated.GetID()}
    for name in ("Red", "Yellow"):
        composite = layout.view_nodes(name)[1]
        assert composite.GetLinkedControl()
        assert composite.GetForegroundVolumeID() is None and composite.GetLabelVolumeID() is None
    assert result.segmentation.GetDisplayNode().GetVisibility()
    # the chart of the blood-pool curve, in the layout's plot view
    plot_view = next(scene.GetNthNodeByClass(i, "vtkMRMLPlotViewNode")
                     for i in range(scene.GetNumberOfNodesByClass("vtkMRMLPlotViewNode"))
                     if scene.GetNthNodeByClass(i, "vtkMRMLPlotViewNode").GetLayoutName() == layout.CHART_VIEW)
    assert plot_view.GetPlotChartNodeID() == result.chart.GetID()
    series = result.chart.GetNthPlotSeriesNode(0)
    assert series.GetTableNode() is result.frames_table
    assert (series.GetXColumnName(), series.GetYColumnName()) == ("Frame", "Blood pool")
    assert "Left (Red): cine" in layout.view_roles_text(result.input, result.translated)
    # what the views draw: the acquired pixels (Red) and the translated ones (Yellow)
    red, yellow = layout.render_view("Red"), layout.render_view("Yellow")
    assert red.shape[2] == 4 and red[..., :3].max() > 0 and not np.array_equal(red, yellow)


def test_segment_editor_auto_show_is_undone_by_showing_the_pair_again(app_scene, study):
    """What the Segment Editor's auto-show does (source volume in every view, no foreground or label
    layer), and the module's answer: the same call puts the pair back, on the same slice."""
    scene = app_scene["scene"]
    _loaded, _labels, result = cine_result(scene, study)
    layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)
    before = slice_to_ras("Red")
    for name in ("Red", "Yellow", "Green"):
        composite = layout.view_nodes(name)[1]
        composite.SetBackgroundVolumeID(result.input.GetID())
        composite.SetForegroundVolumeID(None)
    assert layout.view_backgrounds()["Yellow"] == result.input.GetID()
    layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)
    assert layout.view_backgrounds() == {"Red": result.input.GetID(), "Yellow": result.translated.GetID()}
    np.testing.assert_allclose(slice_to_ras("Red"), before, atol=1e-9)


def test_without_adapter_both_views_show_the_input(app_scene, study):
    scene = app_scene["scene"]
    _loaded, _labels, result = cine_result(scene, study, translated=False)
    assert result.translated is None
    assert layout.show_side_by_side(result.input, None, result.segmentation, result.chart)
    assert layout.view_backgrounds() == {"Red": result.input.GetID(), "Yellow": result.input.GetID()}
    assert "no adapter" in layout.view_roles_text(result.input, None)


def test_no_views_no_change(study):
    """A scene without a layout node (the web page, a script): nothing happens, nothing is added."""
    logics = context.setup_standalone()
    try:
        scene = logics["scene"]
        _loaded, _labels, result = cine_result(scene, study)
        count = scene.GetNumberOfNodes()
        assert layout.show_side_by_side(result.input, result.translated, result.segmentation) is False
        assert scene.GetNumberOfNodes() == count
    finally:
        logics["scene"].Clear(True)


def test_paint_updates_tables_and_chart_without_a_click(app_scene, study):
    """Item 3: a Segment Editor stroke (written as the editor writes it, into the proxy segmentation)
    changes EDV/ESV/EF in the tables at once, per frame; the chart reads the same table."""
    scene = app_scene["scene"]
    loaded, _labels, result = cine_result(scene, study, translated=False)
    watcher = editing.watch_edits(result)
    labels = editing.segmentation_labels(result)
    voxel_ml = float(np.prod(study.spacing)) / 1000.0
    ef_before = {r["Measurement"]: r["Value"] for r in table_rows(result.table)}["Ejection fraction (EF)"]
    es = int(np.argmin([(labels[t] == 1).sum() for t in range(N_PHASES)]))
    loaded.browser.SetSelectedItemNumber(es)
    edited = labels[es].copy()
    edited[:, :6, :6] = 1  # a stroke of blood pool in a corner of every slice
    slicer.util.updateSegmentBinaryLabelmapFromArray((edited == 1).astype(np.uint8), result.segmentation,
                                                     "LeftVentricleBloodPool", loaded.volume)
    assert watcher.updates >= 1  # no apply_edits call: the watcher did it
    expected_labels = labels.copy()
    expected_labels[es] = edited
    expected = cine_measurements(expected_labels, voxel_ml)
    rows = table_rows(result.frames_table)
    assert [r["Blood pool"] for r in rows] == pytest.approx([f["blood_pool_ml"] for f in expected["frames"]])
    summary = {r["Measurement"]: r["Value"] for r in table_rows(result.table)}
    assert summary["Ejection fraction (EF)"] == pytest.approx(expected["ef_percent"])
    assert summary["Ejection fraction (EF)"] != pytest.approx(ef_before)
    assert result.measurements["edited"]
    # stepping to another frame and back changes nothing: the tables describe what is on screen
    loaded.browser.SetSelectedItemNumber((es + 1) % N_PHASES)
    loaded.browser.SetSelectedItemNumber(es)
    assert [r["Blood pool"] for r in table_rows(result.frames_table)] == \
        pytest.approx([f["blood_pool_ml"] for f in expected["frames"]])
    watcher.stop()
    slicer.util.updateSegmentBinaryLabelmapFromArray(np.zeros_like(edited), result.segmentation,
                                                     "LeftVentricleBloodPool", loaded.volume)
    assert {r["Measurement"]: r["Value"] for r in table_rows(result.table)}["Ejection fraction (EF)"] == \
        pytest.approx(expected["ef_percent"])  # stopped: no more updates


def test_scheduled_updates_collapse_a_burst(app_scene, study):
    """With a scheduler (the module passes a short Qt timer) a stroke's many events make one update."""
    scene = app_scene["scene"]
    loaded, _labels, result = cine_result(scene, study, translated=False)
    queued = []
    watcher = editing.watch_edits(result, schedule=queued.append)
    mask = np.zeros(study.image.shape[1:], np.uint8)
    for size in (4, 6, 8):
        mask[:, :size, :size] = 1
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, result.segmentation, "Myocardium", loaded.volume)
    assert len(queued) == 1 and watcher.updates == 0
    queued.pop()()
    assert watcher.updates == 1
    myocardium = table_rows(result.frames_table)[loaded.browser.GetSelectedItemNumber()]["Myocardium"]
    assert myocardium == pytest.approx(mask.sum() * float(np.prod(study.spacing)) / 1000.0, abs=2e-3)
    watcher.stop()


def test_a_scene_saved_with_the_layout_shows_its_views_once_the_module_has_started(app_scene):
    """Opening a scene saved with the module's layout sets its arrangement before the module registers it:
    registering at startup (or any later time) brings the views."""
    scene = app_scene["scene"]
    node = layout.layout_node(scene)
    node.SetViewArrangement(layout.LAYOUT_ID)  # what reading the saved scene does (the id is not known yet)
    assert not node.IsLayoutDescription(layout.LAYOUT_ID)
    assert layout.register_layout(scene)  # UnetGANSlicerGUI.startup.register_layout, on startupCompleted
    assert node.GetViewArrangement() == layout.LAYOUT_ID
    assert node.GetCurrentLayoutDescription() == layout.LAYOUT_XML
    plots = [scene.GetNthNodeByClass(i, "vtkMRMLPlotViewNode").GetLayoutName()
             for i in range(scene.GetNumberOfNodesByClass("vtkMRMLPlotViewNode"))]
    assert layout.CHART_VIEW in plots  # the layout logic made the result layout's own view
    assert layout.register_layout(scene) and node.GetCurrentLayoutDescription() == layout.LAYOUT_XML  # once


def test_sample_data_shows_what_it_loads(app_scene):
    from UnetGANSlicerLib import sample_data

    scene = app_scene["scene"]
    loaded = sample_data.load_and_show(scene)
    backgrounds = {name: layout.view_nodes(name)[1].GetBackgroundVolumeID() for name in ("Red", "Yellow", "Green")}
    assert set(backgrounds.values()) == {loaded.volume.GetID()}
    assert loaded.browser.GetSequenceNode(loaded.volume).GetNumberOfDataNodes() == sample_data.SAMPLE_PHASES


class FakeSegmentEditor:
    """qMRMLSegmentEditorWidget's calls the hand-off makes, recorded (the widget needs Qt)."""

    def __init__(self, auto_show: bool):
        self.autoShowSourceVolumeNode = auto_show
        self.calls = []

    def setAutoShowSourceVolumeNode(self, value):
        self.autoShowSourceVolumeNode = value
        self.calls.append(("autoShow", value))

    def setSegmentationNode(self, node):
        self.calls.append(("segmentation", node.GetID(), self.autoShowSourceVolumeNode))

    def setSourceVolumeNode(self, node):
        self.calls.append(("source", node.GetID(), self.autoShowSourceVolumeNode))


@pytest.mark.parametrize("auto_show", [True, False])
def test_segment_editor_edits_the_results_own_input_and_keeps_its_setting(app_scene, study, auto_show):
    from UnetGANSlicerLib import editor
    from UnetGANSlicerLib.module_logic import ModuleLogic

    scene = app_scene["scene"]
    _loaded, _labels, result = cine_result(scene, study)
    loading.add_image(study.image[0], Geometry(study.spacing, study.origin, study.direction), "another", scene)
    fake = FakeSegmentEditor(auto_show)
    ModuleLogic().handToEditor(fake, result)  # whatever the panel's input selector shows now
    assert ("segmentation", result.segmentation.GetID(), False) in fake.calls
    assert ("source", result.input.GetID(), False) in fake.calls  # set while auto-show is off
    assert fake.autoShowSourceVolumeNode is auto_show  # the user's setting, as it was
    assert editor.AUTO_SHOW[0] == ("autoShowSourceVolumeNode", "setAutoShowSourceVolumeNode")


def test_the_views_say_which_look_the_image_was_translated_to(app_scene, study):
    from UnetGANSlicerLib.module_logic import ModuleLogic

    scene = app_scene["scene"]
    _loaded, _labels, result = cine_result(scene, study)
    logic = ModuleLogic()
    vendor = logic.sourceVendor()
    assert vendor  # the shipped segmenter's source vendor (models.json)
    text = logic.viewRolesText(result)
    assert f"translated to the {vendor} look (what the segmenter saw)" in text and "source look" not in text
