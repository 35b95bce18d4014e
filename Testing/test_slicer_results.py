"""Results that outlive the Python objects and the session, on a real
slicer-core scene: rebuilt from the scene after it was saved and opened again, a cine segmentation
exported as one .seq.nrrd that opens as a sequence, a standalone scene that keeps its logics alive.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import slicer

import test_slicer_views as slicer_views
from test_slicer_views import N_PHASES, study  # noqa: F401 - the same phantom cine
from UnetGANSlicerLib import context, editing, export, results
from UnetGANSlicerLib.measurements import table_rows
from UnetGANSlicerLib.segmentation import labels_of

MODULE_DIR = Path(__file__).resolve().parent.parent / "UnetGANSlicer"
@pytest.fixture
def logics():
    made = context.setup_standalone()
    yield made
    made["scene"].Clear(True)


def cine_result(scene, study, translated=True):
    return slicer_views.cine_result(scene, study, translated, name="case", warnings=["an unusual image"])


def node_ids(scene):
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def test_result_is_rebuilt_from_the_scene_after_save_and_reopen(logics, study, tmp_path):
    """Module reloaded, scene saved and opened: Export and Recompute work from the scene's nodes."""
    _loaded, labels, result = cine_result(logics["scene"], study)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert logics["app_logic"].SaveSceneToSlicerDataBundleDirectory(str(bundle), None)
    del result  # the Python object is gone, as after a module reload

    reopened = context.setup_standalone()
    scene = reopened["scene"]
    try:
        scene.SetURL(str(next(bundle.glob("*.mrml"))))
        assert scene.Import()
        tables = results.result_tables(scene)
        assert len(tables) == 1
        result = results.result_from_table(tables[0])
        assert result.input.GetName() == "case" and result.translated.GetName() == "case translated"
        assert result.browser is not None and result.n_frames == N_PHASES
        assert result.segmentation_sequence.GetNumberOfDataNodes() == N_PHASES
        assert result.translated_sequence.GetNumberOfDataNodes() == N_PHASES
        assert result.chart.GetNthPlotSeriesNode(0).GetTableNode() is result.frames_table
        assert result.warnings == ["an unusual image"]
        np.testing.assert_array_equal(editing.segmentation_labels(result), labels)

        # Recompute after an edit made in the reopened scene
        result.browser.SetSelectedItemNumber(0)
        reference = result.browser.GetSequenceNode(result.input).GetNthDataNode(0)
        slicer.util.updateSegmentBinaryLabelmapFromArray(np.zeros(labels.shape[1:], np.uint8), result.segmentation,
                                                         "LeftVentricleBloodPool", result.input)
        measurements = editing.apply_edits(result)
        assert measurements["frames"][0]["blood_pool_ml"] == 0
        assert table_rows(result.frames_table)[0]["Blood pool"] == 0
        # ... and the numbers are in the scene too, for the next reopening
        assert results.result_from_table(tables[0]).measurements["frames"][0]["blood_pool_ml"] == 0
        # Export
        files = export.save_result(result, tmp_path / "out", "case")
        assert all(path.is_file() for group in files.values() for path in group)
        assert labels_of(result.segmentation_sequence.GetNthDataNode(0), reference).max() == 2  # no blood pool left
    finally:
        scene.Clear(True)


def test_a_table_that_is_not_a_result(logics):
    table = logics["scene"].AddNewNodeByClass("vtkMRMLTableNode", "somebody's table")
    assert results.result_from_table(table) is None and results.result_tables(logics["scene"]) == []


def test_cine_segmentation_exports_as_one_sequence_file_that_reopens_as_a_cine(logics, study, tmp_path):
    scene = logics["scene"]
    loaded, labels, result = cine_result(scene, study, translated=False)
    before = node_ids(scene)
    files = export.save_result(result, tmp_path, "case")
    assert node_ids(scene) == before  # saving adds no node
    [cine_file] = files["segmentation_cine"]
    assert cine_file.name == "case_segmentation.seq.nrrd"

    # open it as Slicer's Add Data does: a sequence node and its storage node in the scene
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", "reopened")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeSequenceStorageNode")
    storage.SetFileName(str(cine_file))
    assert storage.ReadData(sequence)
    assert sequence.GetNumberOfDataNodes() == N_PHASES
    assert [sequence.GetNthIndexValue(t) for t in range(N_PHASES)] == \
        [loaded.sequence.GetNthIndexValue(t) for t in range(N_PHASES)]
    assert (sequence.GetIndexName(), sequence.GetIndexUnit()) == ("time", "ms")
    for t in range(N_PHASES):
        item = sequence.GetNthDataNode(t)
        assert item.IsA("vtkMRMLLabelMapVolumeNode")
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(item), labels[t])
        np.testing.assert_allclose(item.GetSpacing(), loaded.volume.GetSpacing())
        np.testing.assert_allclose(item.GetOrigin(), loaded.volume.GetOrigin(), atol=1e-6)
    # browsable: a browser plays it and its proxy shows each frame's labels
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "reopened browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    slicer.modules.sequences.logic().UpdateProxyNodesFromSequences(browser)
    browser.SetSelectedItemNumber(N_PHASES - 1)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(browser.GetProxyNode(sequence)), labels[-1])


STANDALONE_SCRIPT = textwrap.dedent("""
    import gc, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np, slicer
    from UnetGANSlicerLib import context
    scene = context.setup_standalone()["scene"]  # the caller keeps only the scene
    gc.collect()
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    slicer.util.updateVolumeFromArray(volume, np.zeros((3, 10, 12), np.float32))
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    segment = segmentation.GetSegmentation().AddEmptySegment("a")
    mask = np.zeros((3, 10, 12), np.uint8)
    mask[1, 2:4, 2:4] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation, segment, volume)
    print("voxels", int(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment, volume).sum()))
""")


def test_standalone_scene_kept_alone_does_not_crash(tmp_path):
    """Item 12: the application logic used to be garbage-collected here, and the next slicer.util
    call crashed the interpreter (segmentation fault); run in a child so a crash fails the test."""
    script = tmp_path / "standalone.py"
    script.write_text(STANDALONE_SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(MODULE_DIR)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "voxels 4" in run.stdout
