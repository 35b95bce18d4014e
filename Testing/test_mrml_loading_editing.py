"""UnetGANSlicerLib.loading (images into the scene as Slicer loads them) and .editing
(measurements recomputed after manual edits), on a real MRML scene from slicer-core.

No backend run: the "result" is assembled from the MRML layer's own pieces
(segmentation sequence synchronized in the cine's browser, summary and per-frame
tables), exactly as ``adapt_and_segment`` builds it.
"""
from __future__ import annotations

import numpy as np
import pytest

import slicer  # noqa: E402 - missing slicer-core fails the suite (never skips)

from unetgan.io.images import Geometry, write_image  # noqa: E402
from unetgan.measurements import cine_measurements  # noqa: E402
from UnetGANSlicerLib import context, editing, loading  # noqa: E402
from UnetGANSlicerLib import sequences as seq  # noqa: E402
from UnetGANSlicerLib.measurements import add_frames_table, add_summary_table, table_rows  # noqa: E402
from UnetGANSlicerLib.nodes import geometry_of  # noqa: E402
from UnetGANSlicerLib.results import remember  # noqa: E402
from UnetGANSlicerLib.segmentation import labels_of, set_reference_volume  # noqa: E402
from UnetGANSlicerLib.workflow import AdaptSegmentResult  # noqa: E402

SPACING = (1.5, 1.25, 8.0)
GEOMETRY = Geometry(SPACING, (10.0, -20.0, 30.0), (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
VOXEL_ML = float(np.prod(SPACING)) / 1000.0


@pytest.fixture
def scene():
    logics = context.setup_standalone()
    yield logics["scene"]
    logics["scene"].Clear(True)


def rings(n_frames=3, shape=(4, 40, 48)):
    """Image and labels: a blood pool (1) in a myocardial ring (2) that shrinks over time."""
    zz, yy, xx = np.indices(shape)
    r = np.hypot(yy - shape[1] / 2, xx - shape[2] / 2)
    labels = np.zeros((n_frames, *shape), np.uint8)
    for t in range(n_frames):
        inner = 10 - 2 * t
        labels[t][(r < inner + 4)] = 2
        labels[t][(r < inner)] = 1
    image = (labels * 100 + 20).astype(np.float32) + np.random.default_rng(0).normal(0, 3, labels.shape).astype(
        np.float32)
    return image, labels


def make_result(scene, loaded, labels):
    """A result as adapt_and_segment makes it for a cine (without translation)."""
    source = seq.read_input(loaded.volume)
    measurements = cine_measurements(labels, editing.voxel_volume_ml(loaded.volume))
    measurements["warnings"] = []
    result = AdaptSegmentResult(input=loaded.volume, segmentation=None, table=None, frames_table=None,
                                measurements=measurements, n_frames=len(labels))
    result.segmentation_sequence = seq.new_sequence(scene, "seg", source.sequence)
    seq.fill_segmentation_sequence(result.segmentation_sequence, labels, source)
    result.segmentation = seq.attach(loaded.browser, result.segmentation_sequence, save_changes=True)
    set_reference_volume(result.segmentation, loaded.volume)
    result.browser = loaded.browser
    result.table = add_summary_table(scene, "summary", measurements)
    result.frames_table = add_frames_table(scene, "frames", measurements, source.index_values, "time")
    remember(result)  # as adapt_and_segment: the nodes, and the masks as the backend made them
    return result


# ---------------------------------------------------------------- loading

def test_add_image_volume(scene):
    image, _ = rings(1)
    loaded = loading.add_image(image[0], GEOMETRY, "case", scene)
    assert not loaded.is_cine and loaded.n_frames == 1 and loaded.browser is None
    assert loaded.volume.IsA("vtkMRMLScalarVolumeNode") and loaded.volume.GetDisplayNode() is not None
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(loaded.volume), image[0])
    assert geometry_of(loaded.volume).spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(geometry_of(loaded.volume).origin, GEOMETRY.origin)
    np.testing.assert_allclose(geometry_of(loaded.volume).direction, GEOMETRY.direction, atol=1e-12)
    again = loading.add_image(image[0], GEOMETRY, "case", scene)
    assert again.volume.GetName() == "case (2)"  # never replaces a node


def test_add_image_cine_is_a_sequence_with_trigger_times(scene):
    image, _ = rings(3)
    loaded = loading.add_image(image, GEOMETRY, "cine", scene, trigger_times_ms=[0.0, 33.5, 67.0])
    assert loaded.is_cine and loaded.n_frames == 3
    sequence, browser = loaded.sequence, loaded.browser
    assert browser.GetProxyNode(sequence) is loaded.volume and loaded.volume.GetName() == "cine"
    assert [sequence.GetNthIndexValue(t) for t in range(3)] == ["0", "33.5", "67"]
    assert sequence.GetIndexName() == "time" and sequence.GetIndexUnit() == "ms"
    for t in range(3):
        browser.SetSelectedItemNumber(t)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(loaded.volume), image[t])
    source = seq.read_input(loaded.volume)  # what adapt_and_segment reads: every frame, one geometry
    np.testing.assert_array_equal(source.frames, image)
    np.testing.assert_allclose(source.geometry.direction, GEOMETRY.direction, atol=1e-12)
    # no or repeated trigger times: frame numbers
    plain = loading.add_image(image, GEOMETRY, "plain", scene, trigger_times_ms=[0, 0, 0])
    assert [plain.sequence.GetNthIndexValue(t) for t in range(3)] == ["1", "2", "3"]
    assert plain.sequence.GetIndexName() == "frame"


def test_load_image_file_and_remove(scene, tmp_path):
    image, _ = rings(3)
    path = write_image(image, GEOMETRY, tmp_path / "study_cine.nii.gz")
    before = scene.GetNumberOfNodes()
    loaded = loading.load_image(path, scene)
    assert loaded.is_cine and loaded.volume.GetName() == "study_cine"
    np.testing.assert_allclose(seq.read_input(loaded.volume).frames, image, rtol=1e-6)
    loading.remove_image(loaded)
    assert scene.GetNumberOfNodes() == before
    assert loading.image_name("/a/b/case.seq.nrrd") == "case" and loading.image_name("x.MHA") == "x"


def test_load_image_errors_are_input_errors(scene, tmp_path):
    from unetgan.errors import InputError

    (tmp_path / "bad.nrrd").write_text("not an image")
    with pytest.raises(InputError):
        loading.load_image(tmp_path / "bad.nrrd", scene)
    with pytest.raises(InputError):
        loading.add_image(np.zeros((2, 2)), GEOMETRY, "flat", scene)


# ---------------------------------------------------------------- editing

def test_labels_and_measurements_before_any_edit(scene):
    image, labels = rings(3)
    loaded = loading.add_image(image, GEOMETRY, "cine", scene)
    result = make_result(scene, loaded, labels)
    np.testing.assert_array_equal(editing.segmentation_labels(result), labels)
    again = editing.recompute_measurements(result)
    assert [f["blood_pool_ml"] for f in again["frames"]] == \
           [f["blood_pool_ml"] for f in result.measurements["frames"]]
    assert again["ef_percent"] == result.measurements["ef_percent"]


def test_edit_on_the_shown_frame_updates_tables(scene):
    image, labels = rings(3)
    loaded = loading.add_image(image, GEOMETRY, "cine", scene)
    result = make_result(scene, loaded, labels)
    loaded.browser.SetSelectedItemNumber(2)  # the smallest (ES) frame
    edited = labels[2].copy()
    edited[:, 2:6, 2:6] = 1  # paint blood pool in a corner (64 voxels)
    blood = (edited == 1).astype(np.uint8)
    slicer.util.updateSegmentBinaryLabelmapFromArray(blood, result.segmentation, "LeftVentricleBloodPool",
                                                     loaded.volume)
    measurements = editing.apply_edits(result)
    assert result.measurements is measurements and measurements["edited"] and measurements["edited_frames"] == [3]
    expected = cine_measurements(np.stack([labels[0], labels[1], edited]), VOXEL_ML)
    assert [f["blood_pool_ml"] for f in measurements["frames"]] == [f["blood_pool_ml"] for f in expected["frames"]]
    rows = table_rows(result.frames_table)
    assert [r["Blood pool"] for r in rows] == pytest.approx([f["blood_pool_ml"] for f in expected["frames"]])
    assert [r["time"] for r in rows] == ["1", "2", "3"]  # the index column is kept
    summary = {r["Measurement"]: r["Value"] for r in table_rows(result.table)}
    assert summary["End-systolic volume (ESV)"] == pytest.approx(expected["esv_ml"])
    assert summary["Ejection fraction (EF)"] == pytest.approx(expected["ef_percent"])
    assert summary["ES frame"] == expected["es_frame_number"] == 3
    # the edit is stored in its frame only, also after stepping away and back
    editing.commit_current_frame(result)
    reference = loaded.sequence.GetNthDataNode(2)
    np.testing.assert_array_equal(labels_of(result.segmentation_sequence.GetNthDataNode(2), reference), edited)
    loaded.browser.SetSelectedItemNumber(0)
    np.testing.assert_array_equal(labels_of(result.segmentation, loaded.volume), labels[0])
    loaded.browser.SetSelectedItemNumber(2)
    np.testing.assert_array_equal(labels_of(result.segmentation, loaded.volume), edited)
    np.testing.assert_array_equal(editing.segmentation_labels(result), np.stack([labels[0], labels[1], edited]))


def test_single_volume_result(scene):
    from UnetGANSlicerLib.segmentation import add_segmentation

    image, labels = rings(1)
    loaded = loading.add_image(image[0], GEOMETRY, "vol", scene)
    measurements = cine_measurements(labels, VOXEL_ML)
    result = AdaptSegmentResult(input=loaded.volume, segmentation=add_segmentation(scene, "s", labels[0], loaded.volume),
                                table=add_summary_table(scene, "t", measurements),
                                frames_table=add_frames_table(scene, "f", measurements), measurements=measurements)
    assert editing.current_frame(result) == 0
    editing.commit_current_frame(result)  # nothing to do for a volume
    removed = labels[0].copy()
    removed[removed == 2] = 0
    slicer.util.updateSegmentBinaryLabelmapFromArray(np.zeros_like(removed), result.segmentation, "Myocardium",
                                                     loaded.volume)
    measurements = editing.apply_edits(result)
    assert measurements["frames"][0]["myocardium_ml"] == 0
    summary = {r["Measurement"]: r["Value"] for r in table_rows(result.table)}
    assert summary["Myocardium"] == 0 and summary["Blood pool"] == pytest.approx((labels == 1).sum() * VOXEL_ML)


LARGE = Geometry((3.0, 3.0, 10.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))  # 0.09 mL voxels:
# the rings' EDV is 113 mL and their ED mass 115 g, a heart's


def _paint(result, loaded, frame: int, labels: np.ndarray) -> dict:
    """Show `frame` (0-based) and give its segments `labels` as the Segment Editor would; the watcher's update."""
    loaded.browser.SetSelectedItemNumber(frame)
    for segment, value in (("LeftVentricleBloodPool", 1), ("Myocardium", 2)):
        slicer.util.updateSegmentBinaryLabelmapFromArray((labels == value).astype(np.uint8), result.segmentation,
                                                         segment, loaded.volume)
    return editing.apply_edits(result)


def test_edited_only_while_the_masks_differ_from_the_backends(scene):
    image, labels = rings(3)
    loaded = loading.add_image(image, LARGE, "cine", scene)
    result = make_result(scene, loaded, labels)
    untouched = editing.apply_edits(result)  # the first recomputation marks nothing
    assert untouched["edited"] is False and untouched["edited_frames"] == [] == editing.edited_frames(result)
    assert untouched["ef_percent"] == result.measurements["ef_percent"] and untouched["es_frame_number"] == 3
    before = list(result.warnings)
    assert not any("EF" in w or "mass" in w for w in before), before

    no_blood = labels[2].copy()
    no_blood[no_blood == 1] = 0  # the ES blood pool erased: ESV 0, EF 100 %
    painted = _paint(result, loaded, 2, no_blood)
    assert painted["edited"] is True and painted["edited_frames"] == [3] == editing.edited_frames(result)
    assert painted["esv_ml"] == 0 and painted["ef_percent"] == 100
    for said in ("ESV 0 mL is outside what a human left ventricle holds", "EF 100 % is above 90 %"):
        assert any(w.startswith(said) for w in result.warnings), result.warnings
        assert any(w.startswith(said) for w in painted["warnings"]) and any(
            w.startswith(said) for w in painted["measurement_warnings"])

    _paint(result, loaded, 2, labels[2])  # the edit undone
    again = editing.apply_edits(result)
    assert again["edited"] is False and again["edited_frames"] == [] and again["ef_percent"] == untouched["ef_percent"]
    assert result.warnings == before and again["warnings"] == untouched["warnings"]

    no_myocardium = labels[0].copy()
    no_myocardium[no_myocardium == 2] = 0  # the ED myocardium erased: the mass falls from 115 g to 0
    erased = _paint(result, loaded, 0, no_myocardium)
    assert erased["edited_frames"] == [1] and erased["myocardial_mass_ed_g"] == 0
    assert any(w.startswith("myocardial mass 0 g differs by more than half from the automatic result's 115 g")
               for w in result.warnings), result.warnings


def test_the_edit_watcher_hands_each_update_to_the_panel(scene):
    image, labels = rings(3)
    loaded = loading.add_image(image, LARGE, "cine", scene)
    result = make_result(scene, loaded, labels)
    shown = []
    watcher = editing.watch_edits(result, on_update=lambda m: shown.append((m["edited_frames"], list(result.warnings))))
    try:
        loaded.browser.SetSelectedItemNumber(2)
        slicer.util.updateSegmentBinaryLabelmapFromArray(np.zeros(labels[2].shape, np.uint8), result.segmentation,
                                                         "LeftVentricleBloodPool", loaded.volume)  # ES blood pool gone
        frames, warnings = shown[-1]
        assert frames == [3] and any(w.startswith("EF 100 % is above 90 %") for w in warnings), shown[-1]
        slicer.util.updateSegmentBinaryLabelmapFromArray((labels[2] == 1).astype(np.uint8), result.segmentation,
                                                         "LeftVentricleBloodPool", loaded.volume)  # undone
        frames, warnings = shown[-1]
        assert frames == [] and not any("EF" in w for w in warnings), shown[-1]
    finally:
        watcher.stop()
