"""The Slicer module's Export: the DICOM SEG (the cine, and its ED and ES phases alone), the
TID 1500 SR and the PDF report of a result in a real slicer-core scene, beside the segmentation files.

The cine is a phantom GE DICOM series written by the project, put into the scene as Slicer's DICOM module
puts a series: its slices in the other order than the backend's reader (the slice axis reversed, as
Slicer's loader may order them) and the SOP instance UIDs of each phase's files on its sequence item. The
DICOM database is stood in for by ``FolderDicomIndex`` (ctkDICOMDatabase's calls over the files). Every
mask of the SEGs is read back with highdicom on the very source instance it belongs to.
"""
from __future__ import annotations

import re

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from unetgan.errors import InputError
from unetgan.io.geometry import Geometry
from unetgan.io.images import read_image
from unetgan.measurements import cine_measurements
from unetgan.phantom import make_study, write_study
from UnetGANSlicerLib import context, dicom_export, export, loading, sequences, vendor
from UnetGANSlicerLib.workflow import add_result_nodes

pytestmark = pytest.mark.timeout(240)

BASE = "ge case"
NEW_FILES = {f"{BASE}_segmentation.seg.dcm", f"{BASE}_segmentation_ED.seg.dcm", f"{BASE}_segmentation_ES.seg.dcm",
             f"{BASE}_measurements.sr.dcm", f"{BASE}_report.pdf"}


@pytest.fixture
def scene():
    logics = context.setup_standalone()
    yield logics["scene"]
    logics["scene"].Clear(True)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """(DICOM folder, the reader's image, labels (T, Z, Y, X) in the reader's order, SOP instance UIDs [t][z]).

    The labels are the phantom's truth with a blob of blood pool painted into the last frame (an edit), so
    that no two frames' masks are alike."""
    paths = write_study(make_study("GE", seed=3, n_phases=3, n_slices=3, matrix=48),
                        tmp_path_factory.mktemp("ge"), fmt="dicom", name="ge")
    image = read_image(paths["dicom_dir"])
    truth = read_image(paths["labels"])
    assert np.allclose(truth.geometry.origin, image.geometry.origin) and \
        np.allclose(truth.geometry.direction, image.geometry.direction)  # the labels lie on the reader's grid
    labels = np.where(truth.frames <= 2, truth.frames, 0).astype(np.uint8)
    labels[-1, 1, 5:9, 5:9] = 1
    uids = [[str(pydicom.dcmread(row[t], stop_before_pixels=True).SOPInstanceUID) for row in image.meta["files"]]
            for t in range(image.frames.shape[0])]
    return paths["dicom_dir"], image, labels, uids


def load_as_slicer_does(scene, image, uids):
    """The cine in a sequence on Slicer's grid: the same voxels with the slice axis running the other way."""
    direction = np.reshape(image.geometry.direction, (3, 3)).copy()
    last = np.asarray(image.geometry.origin) + direction[:, 2] * image.geometry.spacing[2] * (image.frames.shape[1] - 1)
    direction[:, 2] *= -1
    flipped = Geometry(image.geometry.spacing, tuple(last), tuple(direction.ravel()))
    loaded = loading.add_image(image.frames[:, ::-1], flipped, "GE cine", scene, image.trigger_times_ms)
    for t in range(loaded.sequence.GetNumberOfDataNodes()):
        loaded.sequence.GetNthDataNode(t).SetAttribute(vendor.INSTANCE_UIDS_ATTRIBUTE, " ".join(uids[t]))
    return loaded


def result_in_scene(scene, loaded, labels_scene, translated_scene):
    source = sequences.read_input(loaded.volume)
    measurements = cine_measurements(labels_scene, float(np.prod(loaded.volume.GetSpacing())) / 1000)
    measurements.update(segmenter="lvunet-augment", adapter="adapter-ge", warnings=[],
                        input={"adapter_choice": "Manufacturer 'GE' is GE"})
    return add_result_nodes(source, labels_scene, measurements, translated_scene)


def node_count(scene) -> int:
    return scene.GetNumberOfNodes()


def test_export_writes_seg_sr_and_pdf_on_the_source_instances(scene, series, tmp_path):
    folder, image, labels, uids = series
    loaded = load_as_slicer_does(scene, image, uids)
    result = result_in_scene(scene, loaded, labels[:, ::-1], image.frames[:, ::-1] * 0.5)
    nodes = node_count(scene)
    out = tmp_path / "export"

    files = export.save_result(result, out, BASE, database=vendor.FolderDicomIndex(folder))

    written = {p.name for p in out.iterdir() if p.is_file()}
    assert NEW_FILES <= written and {p.name for p in files["dicom"] + files["report"]} == NEW_FILES
    assert f"{BASE}_segmentation.seq.nrrd" in written  # the files Export wrote before are still there
    assert node_count(scene) == nodes and not list(out.glob(".partial-*"))
    measurements = result.measurements

    # the cine SEG: every phase's masks on that phase's instances (the scene's slice order undone)
    seg = hd.seg.segread(out / f"{BASE}_segmentation.seg.dcm")
    for t in range(labels.shape[0]):
        masks = seg.get_pixels_by_source_instance(uids[t], combine_segments=True)
        np.testing.assert_array_equal(masks, labels[t], err_msg=f"phase {t}")
    assert seg.PatientID == pydicom.dcmread(image.meta["files"][0][0], stop_before_pixels=True).PatientID

    # ED and ES alone, each in its own series, the phase's instances only (what dcmqi shows as it is)
    series_uids = {seg.SeriesInstanceUID}
    for name, key in (("ED", "ed_frame_number"), ("ES", "es_frame_number")):
        phase = hd.seg.segread(out / f"{BASE}_segmentation_{name}.seg.dcm")
        t = measurements[key] - 1
        referenced = {str(i.ReferencedSOPInstanceUID) for s in phase.ReferencedSeriesSequence
                      for i in s.ReferencedInstanceSequence}
        assert referenced == set(uids[t])
        np.testing.assert_array_equal(phase.get_pixels_by_source_instance(uids[t], combine_segments=True), labels[t])
        assert int(phase.NumberOfFrames) == 2 * labels.shape[1] and f"{name} phase {t + 1}" in phase.SeriesDescription
        series_uids.add(phase.SeriesInstanceUID)
    assert len(series_uids) == 3 and measurements["ed_frame_number"] != measurements["es_frame_number"]

    # the SR: the numbers of the scene's tables, EDV on the ED phase's images
    report = hd.sr.srread(out / f"{BASE}_measurements.sr.dcm")
    groups = {str(g.tracking_identifier): g for g in report.content.get_volumetric_roi_measurement_groups()}
    pool = groups["Left ventricle blood pool"]
    ef = pool.get_measurements(name=codes.LN.LeftVentricularEjectionFractionByMR)[0]
    assert ef.value == pytest.approx(measurements["ef_percent"])
    edv = pool.get_measurements(name=codes.LN.LeftVentricularEndDiastolicVolume)[0]
    assert {str(i.referenced_sop_instance_uid) for i in edv.referenced_images} == set(uids[measurements["ed_frame_number"] - 1])
    assert str(pool.referenced_segment.referenced_sop_instance_uid) == str(seg.SOPInstanceUID)

    data = (out / f"{BASE}_report.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b", data)) == 1

    # nothing is replaced without consent: the DICOM files are among the ones named, and stay as they were
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert {p.name for p in export.existing_files(result, out, BASE)} >= NEW_FILES
    with pytest.raises(export.OutputExists):
        export.save_result(result, out, BASE, database=vendor.FolderDicomIndex(folder))
    assert {p: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps


def test_volume_without_dicom_origin_gets_the_report_only(scene, series, tmp_path):
    _, image, labels, _ = series
    loaded = loading.add_image(image.frames, image.geometry, "nifti cine", scene, image.trigger_times_ms)
    result = result_in_scene(scene, loaded, labels, None)
    note = dicom_export.no_dicom_note(result.input)
    assert "'nifti cine' was not loaded from DICOM, so no DICOM SEG or SR was written" in note

    files = export.save_result(result, tmp_path, "nifti")

    assert "dicom" not in files and [p.name for p in files["report"]] == ["nifti_report.pdf"]
    assert not list(tmp_path.rglob("*.dcm"))
    assert (tmp_path / "nifti_report.pdf").read_bytes().startswith(b"%PDF-")


def test_unusable_dicom_source_is_refused_before_anything_is_written(scene, series, tmp_path):
    folder, image, labels, uids = series
    loaded = load_as_slicer_does(scene, image, uids)
    result = result_in_scene(scene, loaded, labels[:, ::-1], None)

    # the database no longer knows the files
    with pytest.raises(InputError, match=r"9 of the 9 DICOM images of 'GE cine' are no longer in the DICOM database"):
        export.save_result(result, tmp_path / "gone", BASE, database=vendor.FolderDicomIndex(tmp_path))
    # the voxels in the scene are not the DICOM images any more
    item = loaded.sequence.GetNthDataNode(1)
    import slicer

    slicer.util.updateVolumeFromArray(item, np.ascontiguousarray(image.frames[1, ::-1] + 50))
    with pytest.raises(InputError, match=r"phase 2 of the DICOM images of 'GE cine' equals no frame"):
        export.save_result(result, tmp_path / "changed", BASE, database=vendor.FolderDicomIndex(folder))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_frames_in_another_order_and_grids_that_differ():
    rng = np.random.default_rng(0)
    dicom = rng.normal(size=(3, 2, 4, 5)).astype(np.float32)
    scene = dicom[[2, 0, 1]]
    order = dicom_export.frame_order(scene, dicom, "cine")
    assert order == [1, 2, 0]
    moved = dicom_export.reordered_measurements(
        {"frames": [{"frame_number": t + 1, "blood_pool_ml": v} for t, v in enumerate([30.0, 90.0, 60.0])],
         "ed_frame_number": 2, "es_frame_number": 1, "edited_frames": [1, 3]}, order)
    assert [f["blood_pool_ml"] for f in moved["frames"]] == [90.0, 60.0, 30.0]
    assert [f["frame_number"] for f in moved["frames"]] == [1, 2, 3]
    # DICOM phase t is scene frame order[t]; frame numbers stay 1-based
    assert (moved["ed_frame_number"], moved["es_frame_number"], moved["edited_frames"]) == (1, 3, [2, 3])
    older = dicom_export.reordered_measurements(  # a result saved with 0-based indices
        {"frames": [{"frame": t, "blood_pool_ml": v} for t, v in enumerate([30.0, 90.0, 60.0])],
         "ed_frame": 1, "es_frame": 0}, order)
    assert (older["ed_frame_number"], older["es_frame_number"]) == (1, 3) and "ed_frame" not in older

    # a scene grid with X and Y exchanged and Y reversed maps back voxel for voxel
    geometry = Geometry((1.0, 2.0, 8.0), (10.0, -5.0, 3.0))
    ras = dicom_export.ras_matrix(geometry)
    swapped = ras.copy()
    swapped[:3, 0], swapped[:3, 1] = ras[:3, 1], -ras[:3, 0]
    swapped[:3, 3] = ras[:3, 3] + ras[:3, 0] * 4  # scene j runs from the DICOM's last column
    on_scene = np.flip(np.swapaxes(dicom, 2, 3), 2)
    mapping = dicom_export.grid_mapping(swapped, on_scene.shape[1:], geometry, dicom.shape[1:])
    np.testing.assert_array_equal(mapping.apply(on_scene), dicom)
    shifted = ras.copy()
    shifted[:3, 3] += ras[:3, 0] * 0.5  # half a voxel off: not the same voxels
    with pytest.raises(InputError, match="not on the voxel grid of its DICOM images"):
        dicom_export.grid_mapping(shifted, dicom.shape[1:], geometry, dicom.shape[1:])


def test_a_front_end_without_slicers_database_exports_what_it_loaded(scene, series, tmp_path):
    """The web page's path: the backend's reader loads the folder and records the DICOM origin itself."""
    folder, _, labels, uids = series
    loaded = loading.load_image(folder, scene)
    assert [loaded.sequence.GetNthDataNode(t).GetAttribute(vendor.INSTANCE_UIDS_ATTRIBUTE).split()
            for t in range(len(uids))] == uids
    result = result_in_scene(scene, loaded, labels, None)

    files = export.save_result(result, tmp_path, "web", database=loaded.dicom_index)

    seg = hd.seg.segread(files["dicom"][0])
    np.testing.assert_array_equal(seg.get_pixels_by_source_instance(uids[2], combine_segments=True), labels[2])


def test_one_phase_loaded_as_a_volume(scene, series, tmp_path):
    """One phase of the series loaded as a plain volume (its files' UIDs on the node): one SEG, no ED/ES SEGs."""
    folder, image, labels, uids = series
    loaded = loading.add_image(image.frames[1], image.geometry, "phase 2", scene)
    loaded.volume.SetAttribute(vendor.INSTANCE_UIDS_ATTRIBUTE, " ".join(uids[1]))
    result = result_in_scene(scene, loaded, labels[1:2], None)

    files = export.save_result(result, tmp_path, "phase", database=vendor.FolderDicomIndex(folder))

    assert [p.name for p in files["dicom"]] == ["phase_segmentation.seg.dcm", "phase_measurements.sr.dcm"]
    seg = hd.seg.segread(files["dicom"][0])
    np.testing.assert_array_equal(seg.get_pixels_by_source_instance(uids[1], combine_segments=True), labels[1])
    volume = hd.sr.srread(files["dicom"][1]).content.get_volumetric_roi_measurement_groups()[0].get_measurements(
        name=codes.SCT.Volume)[0]
    assert volume.value == pytest.approx(result.measurements["frames"][0]["blood_pool_ml"])
    from pypdf import PdfReader

    text = " ".join(PdfReader(files["report"][0]).pages[0].extract_text().split())  # one frame: no curve, no ED/ES
    assert "Frame 1, mid-ventricular slice" in text and "cardiac cycle" not in text and "ED" not in text, text


def _segment_types(path) -> list[str]:
    return [str(s.SegmentAlgorithmType) for s in pydicom.dcmread(path, stop_before_pixels=True).SegmentSequence]


def _exported(result, out, folder) -> dict:
    """Export; what the files say about edits and frame numbers."""
    import csv
    import json

    from pypdf import PdfReader

    from unetgan.dicom_outputs.sr import ED_FRAME, EDITED_FRAME, ES_FRAME, MYOCARDIAL_VARIATION

    export.save_result(result, out, BASE, database=vendor.FolderDicomIndex(folder))
    saved = json.loads((out / f"{BASE}_measurements.json").read_text())
    summary = {row["Measurement"]: row["Value"] for row in csv.DictReader((out / f"{BASE}_measurements.csv").open())}
    frames = [row["Frame"] for row in csv.DictReader((out / f"{BASE}_volumes.csv").open())]
    report = hd.sr.srread(out / f"{BASE}_measurements.sr.dcm")
    groups = {str(g.tracking_identifier): g for g in report.content.get_volumetric_roi_measurement_groups()}
    pool, myocardium = groups["Left ventricle blood pool"], groups["Left ventricle myocardium"]
    sr = {name: [m.value for m in pool.get_measurements(name=concept)]
          for name, concept in (("ed", ED_FRAME), ("es", ES_FRAME), ("edited", EDITED_FRAME))}
    sr["variation"] = [m.value for m in myocardium.get_measurements(name=MYOCARDIAL_VARIATION)]
    text = " ".join(PdfReader(out / f"{BASE}_report.pdf").pages[0].extract_text().split())
    return {"json": saved, "summary": summary, "frames": frames, "sr": sr, "pdf": text,
            "seg": {name: _segment_types(out / f"{BASE}_segmentation{name}.seg.dcm") for name in ("", "_ED", "_ES")}}


def test_edited_and_seg_algorithm_type_follow_the_masks_and_frame_numbers_agree(scene, series, tmp_path):
    """Untouched: edited false, AUTOMATIC; a paint: true, SEMIAUTOMATIC, its frame named; undone: false again.
    ED and ES frame numbers are the same in the JSON, the CSV tables, the SR and the PDF."""
    import slicer

    folder, image, labels, uids = series
    loaded = load_as_slicer_does(scene, image, uids)
    on_scene = labels[:, ::-1]
    result = result_in_scene(scene, loaded, on_scene, None)

    untouched = _exported(result, tmp_path / "untouched", folder)
    assert untouched["json"]["edited"] is False and untouched["json"]["edited_frames"] == []
    assert all(types == ["AUTOMATIC", "AUTOMATIC"] for types in untouched["seg"].values())
    assert untouched["sr"]["edited"] == [] and "edited" not in untouched["pdf"]
    ed, es = untouched["json"]["ed_frame_number"], untouched["json"]["es_frame_number"]
    assert untouched["frames"] == ["1", "2", "3"] and untouched["json"]["frame_numbering"].startswith("1-based")
    assert (float(untouched["summary"]["ED frame"]), float(untouched["summary"]["ES frame"])) == (ed, es)
    assert (untouched["sr"]["ed"], untouched["sr"]["es"]) == ([ed], [es])
    assert f"ED (frame {ed})" in untouched["pdf"] and f"ES (frame {es})" in untouched["pdf"]
    assert f"ED and ES frames (frame 1 = first phase) {ed} and {es}" in untouched["pdf"]
    variation = untouched["json"]["myocardial_volume_variation_percent"]  # the same in the CSV, the SR and the PDF
    assert variation > 0 and untouched["sr"]["variation"] == [pytest.approx(variation)]
    assert float(untouched["summary"]["Myocardial volume variation over the cycle"]) == pytest.approx(variation)
    assert f"Myocardial volume variation {variation:.1f} % up to 15 %" in untouched["pdf"]

    loaded.browser.SetSelectedItemNumber(1)  # frame 2 on screen, a stroke of blood pool in its corner
    painted = on_scene[1].copy()
    painted[:, 2:5, 2:5] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray((painted == 1).astype(np.uint8), result.segmentation,
                                                     "LeftVentricleBloodPool", loaded.volume)
    edited = _exported(result, tmp_path / "edited", folder)
    assert edited["json"]["edited"] is True and edited["json"]["edited_frames"] == [2] == edited["sr"]["edited"]
    assert all(types == ["SEMIAUTOMATIC", "SEMIAUTOMATIC"] for types in edited["seg"].values())
    assert "masks edited by the user in frame(s) 2" in edited["pdf"]

    slicer.util.updateSegmentBinaryLabelmapFromArray((on_scene[1] == 1).astype(np.uint8), result.segmentation,
                                                     "LeftVentricleBloodPool", loaded.volume)  # undone
    undone = _exported(result, tmp_path / "undone", folder)
    assert undone["json"]["edited"] is False and undone["json"]["edited_frames"] == [] == undone["sr"]["edited"]
    assert all(types == ["AUTOMATIC", "AUTOMATIC"] for types in undone["seg"].values())
    assert undone["json"]["ef_percent"] == untouched["json"]["ef_percent"]
