"""From a phantom DICOM study, `adapt-segment` (adapter auto, shipped models) writes
the DICOM SEG, the TID 1500 SR and the PDF beside the usual outputs; each is read back.

The SEG must give, through highdicom, the labelmap's masks on the very source instances; the SR must
hold the measurements of measurements.json and reference the SEG; the PDF must be one page.
"""
from __future__ import annotations

import json
import re
import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from test_cli import unetgan_here
from unetgan.dicom_outputs import DICOM_OUTPUTS
from unetgan.dicom_outputs.results import export_dicom_results
from unetgan.io.images import read_image
from unetgan.phantom import make_study, write_study
from unetgan.registry import find_model, load_adapter, paired_segmenter

SIEMENS_SEGMENTER = paired_segmenter(load_adapter("Siemens"))
SIEMENS_ADAPTER = find_model("Siemens", "adapter").name  # the registry's first Siemens adapter

pytestmark = pytest.mark.timeout(240)

OUTPUTS = sorted(["labelmap.nrrd", "measurements.csv", "measurements.json", "translated.nrrd", *DICOM_OUTPUTS])


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A Siemens phantom study (3 phases x 3 slices, 112 x 112) with the quirks of real exports: the vendor in
    capitals, an anonymised birth date "00000000" and study date "20120000", a one-part patient name, (as an
    anonymiser left Sunnybrook's) a FrameOfReferenceUID of its own for every image, orientations equal to 1e-6."""
    folder = write_study(make_study("Siemens", seed=7, n_phases=3, n_slices=3, matrix=112),
                         tmp_path_factory.mktemp("study"), fmt="dicom", name="siemens")["dicom_dir"]
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.Manufacturer = "SIEMENS"
        ds.PatientBirthDate, ds.StudyDate, ds.PatientName = "00000000", "20120000", "SCD0000101"
        ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
        if int(ds.InstanceNumber) % 2:  # a cosine rounded differently in the 6th decimal, as in Sunnybrook's SCD0000301
            ds.ImageOrientationPatient = [f"{float(v) + 1e-6:.6f}" if i == 3 else v for i, v in enumerate(ds.ImageOrientationPatient)]
        ds.save_as(path)
    return folder


@pytest.fixture(scope="module")
def run(study_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = unetgan_here("adapt-segment", study_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    return result, out


def _source_uids(study_dir) -> np.ndarray:
    """SOP Instance UIDs of the short-axis cine as (T, Z), in the reader's order."""
    grid = read_image(study_dir).meta["files"]  # [z][t]
    return np.array([[str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in row] for row in grid]).T


def test_outputs_and_what_is_printed(run):
    result, out = run
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert re.search(r"^series: series 1 'SA cine bSSFP \(phantom\)' \(3 phases x 3 slices, UID [\d.]+\): several slice "
                     r"positions and phases, a short-axis description; passed over", result.stdout, re.M)
    assert f"adapter: adapter {SIEMENS_ADAPTER}: Manufacturer 'SIEMENS' is Siemens" in result.stdout
    assert "UserWarning" not in result.stderr and "Traceback" not in result.stderr, result.stderr  # no library noise
    shared = "the cine's images carry 9 different FrameOfReferenceUIDs (an anonymiser's doing?); the DICOM SEG and SR use"
    assert f"WARNING: {shared}" in result.stderr
    measurements = json.loads((out / "measurements.json").read_text())
    assert any(w.startswith(shared) for w in measurements["warnings"])
    # the LV-Unet is the one the shipped Siemens adapter names (trained against)
    assert measurements["adapter"] == SIEMENS_ADAPTER and measurements["segmenter"] == SIEMENS_SEGMENTER


def test_seg_reads_back_to_the_labelmap_on_the_source_instances(run, study_dir):
    _, out = run
    labels = read_image(out / "labelmap.nrrd").array  # (T, Z, Y, X)
    assert (labels == 1).any() and (labels == 2).any(), "the phantom's heart was not found"
    seg = hd.seg.segread(out / "segmentation.seg.dcm")
    uids = _source_uids(study_dir)
    masks = seg.get_pixels_by_source_instance(list(uids.ravel()), combine_segments=True)
    np.testing.assert_array_equal(masks.reshape(labels.shape), labels)
    source = pydicom.dcmread(read_image(study_dir).meta["files"][0][0], stop_before_pixels=True)  # the first image
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert seg[keyword].value == source[keyword].value, keyword
    assert seg.PatientBirthDate == "" and seg.StudyDate == ""  # not dates: left empty, as DICOM allows
    assert source.PatientBirthDate == "00000000", "the input was changed"
    described = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    assert described[1].SegmentLabel == "Left ventricle blood pool"
    assert described[1].SegmentedPropertyTypeCodeSequence[0].CodeValue == "87878005"  # SCT left ventricle
    assert described[2].SegmentedPropertyTypeCodeSequence[0].CodeValue == "49848007"  # SCT LV myocardium
    identification = described[1].SegmentationAlgorithmIdentificationSequence[0]
    assert identification.AlgorithmName == "UnetGANSlicer" and identification.AlgorithmVersion
    shown = str(identification.AlgorithmParameters)
    for name in (SIEMENS_SEGMENTER, SIEMENS_ADAPTER):
        assert f"sha256:{find_model(name, 'segmenter' if name.startswith('lvunet') else 'adapter').sha256}" in shown


def test_sr_holds_the_measurements_and_references_the_seg(run, study_dir):
    _, out = run
    measurements = json.loads((out / "measurements.json").read_text())
    report = hd.sr.srread(out / "measurements.sr.dcm")
    seg = pydicom.dcmread(out / "segmentation.seg.dcm", stop_before_pixels=True)
    groups = {str(g.tracking_identifier): g for g in report.content.get_volumetric_roi_measurement_groups()}
    assert set(groups) == {"Left ventricle blood pool", "Left ventricle myocardium"}
    pool, myocardium = groups["Left ventricle blood pool"], groups["Left ventricle myocardium"]

    def value(group, name):
        found = group.get_measurements(name=name)
        assert len(found) == 1, name
        return found[0]

    ef = value(pool, codes.LN.LeftVentricularEjectionFractionByMR)
    assert ef.value == pytest.approx(measurements["ef_percent"]) and ef.unit.value == "%"
    assert value(pool, codes.LN.LeftVentricularEndDiastolicVolume).value == pytest.approx(measurements["edv_ml"])
    assert value(pool, codes.LN.LeftVentricularEndSystolicVolume).value == pytest.approx(measurements["esv_ml"])
    assert value(myocardium, codes.LN.LeftVentricleMass).value == pytest.approx(measurements["myocardial_mass_ed_g"])
    assert value(myocardium, codes.LN.LeftVentricleMass).unit.value == "g"
    uids = _source_uids(study_dir)
    edv = value(pool, codes.LN.LeftVentricularEndDiastolicVolume)
    assert {str(i.referenced_sop_instance_uid) for i in edv.referenced_images} == set(uids[measurements["ed_frame_number"] - 1])
    for group, number in ((pool, 1), (myocardium, 2)):
        segment = group.referenced_segment
        assert str(segment.referenced_sop_instance_uid) == str(seg.SOPInstanceUID)
        assert segment.referenced_segment_numbers == [number]
    assert report.StudyInstanceUID == seg.StudyInstanceUID and report.PatientID == seg.PatientID


def test_pdf_is_one_page(run):
    _, out = run
    data = (out / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 1


def test_outputs_are_not_replaced_without_overwrite(run, study_dir):
    _, out = run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = unetgan_here("adapt-segment", study_dir, "-o", out)
    assert result.returncode == 2 and "segmentation.seg.dcm" in result.stderr and "--overwrite" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_front_end_export_writes_edited_labels(run, study_dir, tmp_path):
    """What the Slicer module calls after an edit: SEG, SR and PDF of the edited labelmap, nothing else."""
    _, out = run
    labels = read_image(out / "labelmap.nrrd").array
    edited = labels.copy()
    edited[:, 0] = 0  # the user erased the basal slice in every frame
    measurements = json.loads((out / "measurements.json").read_text())
    written = export_dicom_results(tmp_path / "export", study_dir, edited, measurements, segmenter="lvunet-augment")
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == sorted(DICOM_OUTPUTS) == sorted(p.name for p in written)
    seg = hd.seg.segread(tmp_path / "export" / "segmentation.seg.dcm")
    masks = seg.get_pixels_by_source_instance(list(_source_uids(study_dir).ravel()), combine_segments=True)
    np.testing.assert_array_equal(masks.reshape(edited.shape), edited)
    with pytest.raises(Exception, match="do not fit the cine"):
        export_dicom_results(tmp_path / "wrong", study_dir, edited[:, :2], measurements)
    assert not (tmp_path / "wrong").exists() or not any((tmp_path / "wrong").iterdir())


def test_unknown_scanner_warns_and_says_its_choice(study_dir, tmp_path):
    folder = shutil.copytree(study_dir, tmp_path / "in")
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.Manufacturer = "ACME Imaging"
        ds.save_as(path)
    result = unetgan_here("adapt-segment", folder, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^adapter: (no adapter|adapter adapter-[\w-]+): Manufacturer 'ACME Imaging' names no vendor we know, "
                     r"chosen by the label-free check \(", result.stdout, re.M)
    assert re.search(r"^WARNING: Manufacturer 'ACME Imaging' names no vendor we know, with no adapter of its own: chose",
                     result.stderr, re.M)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == OUTPUTS


def test_report_says_how_the_masks_were_made(run):
    from unetgan.dicom_outputs.report_pdf import RUNTIME_WORDS, _processing

    _, out = run
    measurements = json.loads((out / "measurements.json").read_text())
    from unetgan.tta import DEFAULT_TTA

    assert DEFAULT_TTA == "none"
    assert _processing(measurements) == ("one pass per image (no averaging over mirrored copies), networks in "
                                         f"{RUNTIME_WORDS[measurements['runtime']]}")
    assert _processing({**measurements, "test_time_augmentation": "flip4"}).startswith("averaged over mirrored copies (flip4)")
    assert _processing({**measurements, "edited": True}).endswith(", masks edited by the user")
    assert _processing({}) == "-"


def test_report_flags_numbers_outside_the_reference_ranges():
    from unetgan.dicom_outputs.report_pdf import _table_rows

    rows = {row[0]: row for row in _table_rows({"edv_ml": 195.2, "esv_ml": 133.6, "sv_ml": 61.6, "ef_percent": 31.6,
                                                "myocardial_mass_ed_g": 157.0, "frames": []})}
    assert rows["Ejection fraction (EF)"][1:] == ["31.6 %", "55-78 %", "below range"]
    assert rows["End-systolic volume (ESV)"][3] == "above range"
    assert rows["End-diastolic volume (EDV)"][3] == "within range"
    single = _table_rows({"frames": [{"blood_pool_ml": 120.0, "myocardial_mass_g": 90.5}]})  # one frame: no EF
    assert single == [["Blood-pool volume", "120.0 mL", "-", "-"], ["Myocardial mass", "90.5 g", "-", "-"]]


def test_one_phase_seg_for_viewers_that_merge_phases(run, study_dir, tmp_path):
    """Slicer's SEG reader (dcmqi) shows a cine SEG as the union over phases: a front end exports a phase's own."""
    from unetgan.dicom_outputs.algorithm import AlgorithmInfo
    from unetgan.dicom_outputs.seg import phase_segmentation
    from unetgan.dicom_outputs.source import share_frame_of_reference, share_orientation, source_headers

    _, out = run
    labels = read_image(out / "labelmap.nrrd").array
    ed = json.loads((out / "measurements.json").read_text())["ed_frame_number"] - 1
    headers = source_headers(read_image(study_dir).meta["files"])
    share_orientation(headers)
    share_frame_of_reference(headers)
    phase_segmentation(labels[ed], headers[ed], AlgorithmInfo.of("lvunet-augment", "adapter-siemens")).save_as(
        tmp_path / "ed.seg.dcm")
    seg = hd.seg.segread(tmp_path / "ed.seg.dcm")
    masks = seg.get_pixels_by_source_instance(list(_source_uids(study_dir)[ed]), combine_segments=True)
    np.testing.assert_array_equal(masks, labels[ed])
    assert int(seg.NumberOfFrames) == 2 * labels.shape[1]


def _pdf_text(path) -> str:
    from pypdf import PdfReader

    return " ".join(PdfReader(path).pages[0].extract_text().split())


def _sr_frame_numbers(path, concept) -> list[float]:
    report = hd.sr.srread(path)
    return [m.value for group in report.content.get_volumetric_roi_measurement_groups()
            for m in group.get_measurements(name=concept)]


def _sr_comments(path) -> list[str]:
    report = pydicom.dcmread(path)
    return [str(item.TextValue) for item in report.ContentSequence  # the comments: TEXT items named Comment (DCM)
            if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "121106"]


def test_frame_numbers_agree_in_json_csv_sr_and_pdf(run):
    """One numbering (frame 1 = the first phase) in every output a person reads."""
    import csv

    from unetgan.dicom_outputs.sr import ED_FRAME, ES_FRAME

    _, out = run
    measurements = json.loads((out / "measurements.json").read_text())
    ed, es = measurements["ed_frame_number"], measurements["es_frame_number"]
    assert measurements["frame_numbering"].startswith("1-based") and "ed_frame" not in measurements
    assert [f["frame_number"] for f in measurements["frames"]] == [1, 2, 3] and ed != es and {ed, es} <= {1, 2, 3}
    rows = {row[0]: row[1] for row in csv.reader((out / "measurements.csv").read_text().splitlines())}
    assert rows["frame_number"] == "blood_pool_ml" and {"1", "2", "3"} <= set(rows)
    assert (rows["ed_frame_number"], rows["es_frame_number"]) == (str(ed), str(es))
    assert _sr_frame_numbers(out / "measurements.sr.dcm", ED_FRAME) == [ed]
    assert _sr_frame_numbers(out / "measurements.sr.dcm", ES_FRAME) == [es]
    text = _pdf_text(out / "report.pdf")
    assert f"ED (frame {ed})" in text and f"ES (frame {es})" in text, text
    assert f"ED and ES frames (frame 1 = first phase) {ed} and {es}" in text, text


def test_seg_algorithm_type_and_the_edited_frames_follow_the_edits(run, study_dir, tmp_path):
    """Untouched: AUTOMATIC and nothing said about edits; edited: SEMIAUTOMATIC, with the frames in SR and PDF."""
    from unetgan.dicom_outputs.sr import EDITED_FRAME

    _, out = run
    untouched = pydicom.dcmread(out / "segmentation.seg.dcm", stop_before_pixels=True)
    assert [str(s.SegmentAlgorithmType) for s in untouched.SegmentSequence] == ["AUTOMATIC", "AUTOMATIC"]
    assert _sr_frame_numbers(out / "measurements.sr.dcm", EDITED_FRAME) == []
    assert "edited" not in _pdf_text(out / "report.pdf")
    assert not any("edited" in said for said in _sr_comments(out / "measurements.sr.dcm"))

    labels = read_image(out / "labelmap.nrrd").array
    measurements = json.loads((out / "measurements.json").read_text())
    warning = "EF 95 % is above 90 %, which a human heart does not reach: check the end-systolic masks"
    measurements.update(edited=True, edited_frames=[2], warnings=[*measurements["warnings"], warning])
    edited = labels.copy()
    edited[1, 0] = 0
    export_dicom_results(tmp_path / "export", study_dir, edited, measurements, segmenter=SIEMENS_SEGMENTER)
    seg = pydicom.dcmread(tmp_path / "export" / "segmentation.seg.dcm", stop_before_pixels=True)
    assert [str(s.SegmentAlgorithmType) for s in seg.SegmentSequence] == ["SEMIAUTOMATIC", "SEMIAUTOMATIC"]
    assert _sr_frame_numbers(tmp_path / "export" / "measurements.sr.dcm", EDITED_FRAME) == [2]
    comments = _sr_comments(tmp_path / "export" / "measurements.sr.dcm")
    assert comments[0] == "Masks edited by the user in frame(s) 2 (frame 1 is the first phase)"
    assert f"Warning: {warning}" in comments
    text = _pdf_text(tmp_path / "export" / "report.pdf")
    assert "masks edited by the user in frame(s) 2" in text and "EF 95 % is above 90 %" in text, text


def test_a_one_frame_report_has_no_cycle_chart_and_no_ed_es_pair(ring, tmp_path):
    from unetgan.dicom_outputs.algorithm import AlgorithmInfo
    from unetgan.dicom_outputs.report_pdf import report_content, write_report_pdf
    from unetgan.measurements import cine_measurements

    image, labels, spacing = ring
    measurements = cine_measurements(labels[:1], float(np.prod(spacing)) / 1000)
    measurements["warnings"] = measurements["measurement_warnings"]
    content = report_content(image[:1], None, labels[:1], measurements, None, AlgorithmInfo.of(None, None))
    assert list(content.slices) == ["Frame 1"]
    write_report_pdf(tmp_path / "one.pdf", content)
    text = _pdf_text(tmp_path / "one.pdf")
    assert "Frame 1, mid-ventricular slice: original" in text and "Blood-pool volume" in text, text
    for absent in ("cardiac cycle", "ED", "ES", "frame 1 = first phase"):
        assert absent not in text, absent
