"""DICOM layouts that scanners and archives really write, each made from the phantom's single-frame study and read
to the same cine, EF and masks: Enhanced MR multi-frame files (highdicom's legacy conversion; one file for the whole
cine, or one per slice position with the Enhanced MR's own cardiac and temporal tags), one series per slice position
(sax_5, sax_6, ...), a DICOMDIR (pydicom's FileSet). Untidy studies (an image missing, repeated, a slice with a phase
fewer) get their exact message. The DICOM SEG of a multi-frame input references the frames it segments.
"""
from __future__ import annotations

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from test_cli import unetgan_here
from test_reliability import assert_refused, fingerprint
from unetgan.dicom_outputs.results import export_dicom_results
from unetgan.io.dicom_rewrite import LAYOUTS
from unetgan.io.images import read_image
from unetgan.phantom import make_study, write_study
from unetgan.pipeline import run_study

pytestmark = pytest.mark.timeout(300)
N_PHASES, N_SLICES = 3, 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The phantom's single-frame study and its segmentation by the shipped networks (one run, shared)."""
    folder = write_study(make_study("GE", seed=4, n_phases=N_PHASES, n_slices=N_SLICES, matrix=96),
                         tmp_path_factory.mktemp("plain"), fmt="dicom", name="ge")["dicom_dir"]
    image, labels, _, measurements = run_study(folder, None, runtime="torch", tta="none")
    return folder, image, labels, measurements


def _short_axis(folder):
    """The short-axis cine's files (the phantom writes them at the top of the study folder), by slice then phase."""
    files = [(pydicom.dcmread(p), p) for p in folder.glob("*.dcm")]
    return sorted(files, key=lambda f: (float(f[0].SliceLocation), float(f[0].TriggerTime)))


def _study_without_short_axis(reference_folder, target):
    shutil.copytree(reference_folder, target, ignore=lambda d, names: [n for n in names if n.endswith(".dcm")
                                                                         and d == str(reference_folder)])
    return target


def _rewritten(layout, reference_folder, target, **options):
    """The phantom's study with its short-axis cine (the files at the top of its folder) in another layout."""
    folder = _study_without_short_axis(reference_folder, target)
    LAYOUTS[layout](sorted(reference_folder.glob("*.dcm")), folder, **options)
    return folder


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_layout_gives_the_single_frame_result(layout, reference, tmp_path):
    plain, image, labels, measurements = reference
    folder = _rewritten(layout, plain, tmp_path / "study")
    read = read_image(folder)
    np.testing.assert_array_equal(read.array, image.array)
    for got, expected in zip(vars(read.geometry).values(), vars(image.geometry).values()):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    assert read.trigger_times_ms == image.trigger_times_ms and read.meta["warnings"] == []
    _, got_labels, _, got = run_study(folder, None, runtime="torch", tta="none")
    assert got["ef_percent"] == measurements["ef_percent"]
    np.testing.assert_array_equal(got_labels, labels)


def test_series_per_slice_are_joined_with_a_line_that_names_them(reference, tmp_path):
    folder = _rewritten("a series per slice position", reference[0], tmp_path / "study")
    reason = read_image(folder).meta["series"]["reason"]
    assert reason.startswith(
        "4 series joined (5, 6, 7, 8) (3 phases x 4 slices, UIDs ")
    assert ("joined 4 series, one per slice position (series 5 'sax_5', series 6 'sax_6', series 7 'sax_7', series 8 "
            "'sax_8'): same orientation, frame of reference, matrix, pixel spacing, 3 phases and trigger times, 10.0 mm "
            "apart, several slice positions and phases; passed over series 3 'LAX cine bSSFP (phantom)' (3 images): one "
            "slice position: a long-axis or single-slice view; series 2 'Localizer (phantom)' (1 image): a localiser"
            ) in reason


def test_series_uids_choose_the_series_to_join(reference, tmp_path):
    folder = _rewritten("a series per slice position", reference[0], tmp_path / "study")
    numbered = {int(ds.SeriesNumber): ds.SeriesInstanceUID
                for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm"))}
    chosen = [numbered[number] for number in (5, 6, 7)]  # three neighbouring slices
    image = read_image(folder, series_uid=",".join(chosen))
    assert image.array.shape[:2] == (N_PHASES, 3) and "chosen with --series" in image.meta["series"]["reason"]
    out = tmp_path / "out" / "labels.nrrd"
    result = unetgan_here("segment", folder, "-o", out, "--series", chosen[0], "--series", ",".join(chosen[1:]),
                          "--runtime", "torch")
    assert result.returncode == 0, result.stderr
    assert read_image(out).array.shape[:2] == (N_PHASES, 3)


def test_a_gap_in_a_stack_of_series_is_refused_naming_them(reference, tmp_path):
    folder = _rewritten("a series per slice position", reference[0], tmp_path / "study", keep=(0, 1, 3))
    before = fingerprint(folder)
    result = unetgan_here("segment", folder, "-o", tmp_path / "out" / "labels.nrrd")
    assert_refused(result, r"the short-axis stack of one series per slice position has a gap: between series 6 "
                           r"'sax_6' \(3 images\) and series 8 'sax_8' \(3 images\) \(20\.0 mm apart\), where the other "
                           r"slices are 10\.0 mm apart; a slice position's series is missing",
                   tmp_path / "out", before, folder)


def test_a_series_that_disagrees_is_left_out_with_a_warning(reference, tmp_path):
    folder = _rewritten("a series per slice position", reference[0], tmp_path / "study")
    apex = [p for p in folder.glob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).get("SeriesNumber") == 8]
    for path in apex[:1]:  # one phase fewer than the others
        path.unlink()
    image = read_image(folder)
    assert image.array.shape[:2] == (N_PHASES, 3)
    uid = pydicom.dcmread(apex[1], stop_before_pixels=True).SeriesInstanceUID
    assert image.meta["warnings"] == [f"series 8 'sax_8' (2 images, UID {uid}) lies in the plane of the short-axis "
                                      "series but has 2 phases, the others 3: not joined to them"]


# ---------------------------------------------------------------- the SEG of a multi-frame input

@pytest.mark.parametrize("layout", ["one multi-frame file", "a multi-frame file per slice"])
def test_the_seg_of_a_multiframe_input_references_its_frames(layout, reference, tmp_path):
    plain, _, labels, measurements = reference
    folder = _rewritten(layout, plain, tmp_path / "study")
    image = read_image(folder)
    export_dicom_results(tmp_path / "out", folder, labels, dict(measurements))
    seg = hd.seg.segread(tmp_path / "out" / "segmentation.seg.dcm")
    sources = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(p, stop_before_pixels=True)
                                                     for p in folder.glob("*.dcm")) if "NumberOfFrames" in ds}
    listed = [str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence]
    assert sorted(listed) == sorted(sources)  # each multi-frame instance once
    for item in seg.PerFrameFunctionalGroupsSequence:
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert str(source.ReferencedSOPInstanceUID) in sources
        assert source.ReferencedSOPClassUID == sources[str(source.ReferencedSOPInstanceUID)].SOPClassUID
        assert 1 <= int(source.ReferencedFrameNumber) <= int(sources[str(source.ReferencedSOPInstanceUID)].NumberOfFrames)
    for z, (paths, numbers) in enumerate(zip(image.meta["files"], image.meta["frame_numbers"])):
        for t, (path, number) in enumerate(zip(paths, numbers)):
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            mask = seg.get_pixels_by_source_frame(uid, source_frame_numbers=[number], combine_segments=True)[0]
            np.testing.assert_array_equal(mask, labels[t, z])
    report = pydicom.dcmread(tmp_path / "out" / "measurements.sr.dcm")
    frames = [item.ReferencedSOPSequence[0] for item in _content_items(report)
              if item.get("ValueType") == "IMAGE" and "ReferencedSegmentNumber" not in item.ReferencedSOPSequence[0]]
    assert frames and all(str(f.ReferencedSOPInstanceUID) in sources and "ReferencedFrameNumber" in f for f in frames)


def _content_items(ds):
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _content_items(item)


def _frame_masks(seg, uid, numbers):
    return seg.get_pixels_by_source_frame(uid, source_frame_numbers=numbers, combine_segments=True)


def test_the_mrml_layer_loads_a_multiframe_cine_and_its_export_references_the_frames(reference, tmp_path):
    """The Slicer module's and the web page's path: the backend's reader into a real MRML scene, then Export."""
    from test_slicer_dicom_export import result_in_scene
    from unetgan.measurements import frame_index
    from UnetGANSlicerLib import context, export, loading, sequences, vendor

    plain, image, labels, _ = reference
    folder = _rewritten("one multi-frame file", plain, tmp_path / "study")
    uid = str(pydicom.dcmread(folder / "cine.dcm", stop_before_pixels=True).SOPInstanceUID)
    scene = context.setup_standalone()["scene"]
    try:
        loaded = loading.load_image(folder, scene)
        assert loaded.n_frames == N_PHASES and loaded.warnings == []
        np.testing.assert_array_equal(sequences.read_input(loaded.volume).frames, image.frames)
        assert [loaded.sequence.GetNthDataNode(t).GetAttribute(vendor.INSTANCE_UIDS_ATTRIBUTE).split()
                for t in range(N_PHASES)] == [[uid] * N_SLICES] * N_PHASES
        result = result_in_scene(scene, loaded, labels, None)
        files = export.save_result(result, tmp_path / "out", "mf", database=loaded.dicom_index)
    finally:
        scene.Clear(True)
    numbers = read_image(folder).meta["frame_numbers"]  # [z][t]
    cine, ed_seg = (hd.seg.segread(path) for path in files["dicom"][:2])
    for t in range(N_PHASES):
        np.testing.assert_array_equal(_frame_masks(cine, uid, [row[t] for row in numbers]), labels[t])
    ed = frame_index(result.measurements, "ed")
    np.testing.assert_array_equal(_frame_masks(ed_seg, uid, [row[ed] for row in numbers]), labels[ed])
    assert {str(i.ReferencedSOPInstanceUID) for s in ed_seg.ReferencedSeriesSequence
            for i in s.ReferencedInstanceSequence} == {uid}


# ---------------------------------------------------------------- untidy studies: each case's exact message

UNTIDY_PHASES = 8  # a real cine has 20 to 30: one phase left out of 8 is still most of the cycle


@pytest.fixture(scope="module")
def untidy_source(tmp_path_factory):
    folder = write_study(make_study("GE", seed=6, n_phases=UNTIDY_PHASES, n_slices=N_SLICES, matrix=96),
                         tmp_path_factory.mktemp("untidy"), fmt="dicom", name="ge")["dicom_dir"]
    return folder, read_image(folder)


def _cell(folder, z, t):
    """The file of slice z, phase t (0-based) of the phantom's short-axis cine."""
    return _short_axis(folder)[z * UNTIDY_PHASES + t][1]


def _location(folder, z):
    """Slice z's position along the normal, as the reader rounds it (the phantom writes it as SliceLocation)."""
    return round(float(_short_axis(folder)[z * UNTIDY_PHASES][0].SliceLocation), 2)


def test_a_missing_instance_is_named_and_its_phase_left_out(untidy_source, tmp_path):
    source, complete = untidy_source
    folder = shutil.copytree(source, tmp_path / "study")
    _cell(folder, 1, 4).unlink()  # slice 2, phase 5: instance 13 of the slice-major numbering
    image = read_image(folder)
    trigger = complete.trigger_times_ms[4]
    assert image.meta["warnings"] == [
        f"the cine is incomplete: slice 2 of 4 (at {_location(source, 1):.1f} mm) has no image at phase 5 of 8 "
        f"(trigger time {trigger:g} ms) (instance 13 missing from the series): phase 5 is left out at every slice, "
        "and the cine is read with 7 of 8 phases"]
    kept = [t for t in range(UNTIDY_PHASES) if t != 4]
    np.testing.assert_array_equal(image.array, complete.array[kept])  # no frame shifted
    assert image.trigger_times_ms == [complete.trigger_times_ms[t] for t in kept]


def test_a_slice_with_a_phase_fewer_is_named_and_the_phase_left_out(untidy_source, tmp_path):
    """A slice acquired with one phase fewer (e.g. an arrhythmia): its instances are numbered without a gap."""
    source, complete = untidy_source
    folder = shutil.copytree(source, tmp_path / "study")
    _cell(folder, 2, UNTIDY_PHASES - 1).unlink()
    for ds, path in _short_axis(folder)[3 * UNTIDY_PHASES - 1:]:
        ds.InstanceNumber -= 1
        ds.save_as(path)
    image = read_image(folder)
    assert image.meta["warnings"] == [
        f"the cine is incomplete: slice 3 of 4 (at {_location(source, 2):.1f} mm) has no image at phase 8 of 8 "
        f"(trigger time {complete.trigger_times_ms[-1]:g} ms): phase 8 is left out at every slice, and the cine is "
        "read with 7 of 8 phases"]
    np.testing.assert_array_equal(image.array, complete.array[:-1])


def test_a_duplicate_instance_is_read_once_with_a_warning(untidy_source, tmp_path):
    source, complete = untidy_source
    folder = shutil.copytree(source, tmp_path / "study")
    original = _cell(folder, 0, 2)
    shutil.copy(original, folder / "lax_cine" / "copy.dcm")  # the same image twice, in another folder
    image = read_image(folder)
    assert image.meta["warnings"] == [f"copy.dcm repeats {original.name} (the same SOPInstanceUID): each image read once"]
    np.testing.assert_array_equal(image.array, complete.array)


def test_a_cine_missing_too_many_phases_is_refused_naming_them(untidy_source, tmp_path):
    source, complete = untidy_source
    folder = shutil.copytree(source, tmp_path / "study")
    for path in [_cell(folder, 3, t) for t in (1, 3, 5)]:
        path.unlink()
    before = fingerprint(folder)
    result = unetgan_here("segment", folder, "-o", tmp_path / "out" / "labels.nrrd")
    where = f"slice 4 of 4 \\(at {_location(source, 3):.1f} mm\\)"
    assert_refused(result, f"the cine is incomplete: {where} has no image at phase 2 of 8 \\(trigger time [\\d.]+ ms\\); "
                           f"{where} has no image at phase 4 of 8 .*; {where} has no image at phase 6 of 8 .* \\(instances "
                           r"26, 28, 30 missing from the series\); too many phases are missing to measure it \(5 of 8 "
                           r"complete\); expected every slice at every phase",
                   tmp_path / "out", before, folder)


def test_the_warning_reaches_the_command_line_and_the_results(untidy_source, tmp_path):
    source, _ = untidy_source
    folder = shutil.copytree(source, tmp_path / "study")
    _cell(folder, 1, 4).unlink()
    out = tmp_path / "out" / "labels.nrrd"
    result = unetgan_here("segment", folder, "-o", out, "--runtime", "torch")
    assert result.returncode == 0, result.stderr
    assert "WARNING: the cine is incomplete: slice 2 of 4" in result.stderr and "Traceback" not in result.stderr
    import json
    said = json.loads((tmp_path / "out" / "labels_measurements.json").read_text())["warnings"]
    assert said[0].startswith("the cine is incomplete: slice 2 of 4") and len(said[-1]) > 0


def test_a_dicomdir_lists_the_files_to_read(reference, tmp_path):
    """A patient CD: pydicom's FileSet writes the study with its DICOMDIR; files it does not list are not read."""
    from pydicom.fileset import FileSet

    plain, image, _, _ = reference
    files = FileSet()
    for path in sorted(plain.rglob("*.dcm")):
        files.add(path)
    cd = tmp_path / "cd"
    files.write(cd)
    assert (cd / "DICOMDIR").is_file() and not list(cd.rglob("*.dcm"))  # the CD's own names, no suffixes
    stray = pydicom.dcmread(_short_axis(plain)[0][1])
    stray.SeriesInstanceUID, stray.SOPInstanceUID = generate_uid(), generate_uid()
    stray.save_as(cd / "stray.dcm")  # another series beside the CD's index: not listed, not read
    read = read_image(cd)
    np.testing.assert_array_equal(read.array, image.array)
    assert read.meta["series"]["reason"].startswith("series 1 'SA cine bSSFP (phantom)'") and read.meta["warnings"] == []
    localizer = next(p for p in cd.rglob("*") if p.is_file() and p.name not in ("DICOMDIR", "stray.dcm")
                     and "LOCALIZER" in pydicom.dcmread(p, stop_before_pixels=True).ImageType)
    localizer.unlink()  # a CD copied in part
    assert read_image(cd).meta["warnings"] == [f"the DICOMDIR lists 1 file(s) that are not in {cd}: "
                                               f"{localizer.relative_to(cd)}"]


def test_a_dicomdir_naming_a_file_outside_its_folder_is_refused(reference, tmp_path):
    from pydicom.fileset import FileSet

    files = FileSet()
    for path in sorted(reference[0].glob("*.dcm")):
        files.add(path)
    cd = tmp_path / "cd"
    files.write(cd)
    index = pydicom.dcmread(cd / "DICOMDIR")
    next(r for r in index.DirectoryRecordSequence if "ReferencedFileID" in r).ReferencedFileID = ["..", "ELSEWHERE"]
    index.save_as(cd / "DICOMDIR")
    before = fingerprint(cd)
    result = unetgan_here("segment", cd, "-o", tmp_path / "out" / "labels.nrrd")
    assert_refused(result, r"DICOMDIR: the DICOMDIR names the file '\.\./ELSEWHERE', not a path inside its folder",
                   tmp_path / "out", before, cd)


def test_a_missing_image_is_found_where_trigger_times_drift_between_slices(untidy_source, tmp_path):
    """Each slice is acquired in its own breath-hold, at its own heart rate: here slice 4's phases are 10 % further
    apart than the others' (its last phase 95 ms, most of a phase interval, later), and its phase 5 is missing."""
    source, complete = untidy_source
    folder = shutil.copytree(source, tmp_path / "study")
    for ds, path in _short_axis(folder)[3 * UNTIDY_PHASES:]:
        ds.TriggerTime = round(float(ds.TriggerTime) * 1.1, 3)
        ds.save_as(path)
    _cell(folder, 3, 4).unlink()
    image = read_image(folder)
    assert image.meta["warnings"][0].startswith(
        f"the cine is incomplete: slice 4 of 4 (at {_location(source, 3):.1f} mm) has no image at phase 5 of 8 "
        f"(trigger time {complete.trigger_times_ms[4]:g} ms) (instance 29 missing from the series): phase 5 is left out")
    kept = [t for t in range(UNTIDY_PHASES) if t != 4]
    np.testing.assert_array_equal(image.array, complete.array[kept])


def test_series_per_slice_join_despite_each_slices_own_heart_rate(reference, tmp_path):
    """Trigger times of the same phase differ between slices acquired in different breath-holds: joined all the same;
    a series whose phases are a different protocol's (intervals 40 % longer) is not."""
    folder = _rewritten("a series per slice position", reference[0], tmp_path / "study")
    for number, factor in ((6, 1.08), (8, 1.4)):
        for path in folder.glob("*.dcm"):
            ds = pydicom.dcmread(path)
            if ds.get("SeriesNumber") == number:
                ds.TriggerTime = round(float(ds.TriggerTime) * factor, 3)
                ds.save_as(path)
    image = read_image(folder)
    assert image.array.shape[:2] == (N_PHASES, 3)
    assert "joined 3 series, one per slice position (series 5 'sax_5', series 6 'sax_6', series 7 'sax_7')" in \
        image.meta["series"]["reason"]
    assert len(image.meta["warnings"]) == 1 and image.meta["warnings"][0].startswith("series 8 'sax_8'") and \
        image.meta["warnings"][0].endswith("lies in the plane of the short-axis series but has other trigger times: "
                                           "not joined to them")


def test_a_patient_cd_is_one_input_of_a_batch(reference, tmp_path):
    """A folder of inputs holding a CD with its DICOMDIR: the CD is one study, not one per sub-folder of the CD."""
    from pydicom.fileset import FileSet

    from unetgan.io.folders import image_inputs

    files = FileSet()
    for path in sorted(reference[0].rglob("*.dcm")):
        files.add(path)
    files.write(tmp_path / "inputs" / "cd")
    shutil.copytree(reference[0], tmp_path / "inputs" / "plain")
    assert image_inputs(tmp_path / "inputs") == [tmp_path / "inputs" / "cd", tmp_path / "inputs" / "plain"]


def test_the_seg_of_a_stack_of_series_references_each_image_in_its_own_series(reference, tmp_path):
    plain, _, labels, measurements = reference
    folder = _rewritten("a series per slice position", plain, tmp_path / "study")
    image = read_image(folder)
    export_dicom_results(tmp_path / "out", folder, labels, dict(measurements))
    seg = hd.seg.segread(tmp_path / "out" / "segmentation.seg.dcm")
    headers = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm"))}
    listed = {str(s.SeriesInstanceUID): {str(i.ReferencedSOPInstanceUID) for i in s.ReferencedInstanceSequence}
              for s in seg.ReferencedSeriesSequence}
    assert len(listed) == N_SLICES and sum(len(uids) for uids in listed.values()) == N_SLICES * N_PHASES
    assert all(str(headers[uid].SeriesInstanceUID) == series for series, uids in listed.items() for uid in uids)
    for z, paths in enumerate(image.meta["files"]):
        for t, path in enumerate(paths):
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            np.testing.assert_array_equal(seg.get_pixels_by_source_instance([uid], combine_segments=True)[0], labels[t, z])
    report = pydicom.dcmread(tmp_path / "out" / "measurements.sr.dcm")
    evidence = {str(s.SeriesInstanceUID) for study in report.CurrentRequestedProcedureEvidenceSequence
                for s in study.ReferencedSeriesSequence}
    assert set(listed) <= evidence


def test_series_in_different_frames_of_reference_are_joined_only_when_asked(reference, tmp_path):
    """An anonymiser that gives every series its own FrameOfReferenceUID: not joined on a guess; the error says why
    and how; --series with their UIDs joins them, with a warning."""
    folder = _rewritten("a series per slice position", reference[0], tmp_path / "study")
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        if "SeriesNumber" in ds and ds.SeriesNumber >= 5:
            ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[str(ds.SeriesNumber)])
            ds.save_as(path)
    before = fingerprint(folder)
    result = unetgan_here("segment", folder, "-o", tmp_path / "out" / "labels.nrrd")
    assert_refused(result, r"no short-axis cine in .*; expected a series with several slice positions, each imaged at "
                           r"several cardiac phases \(4 single-position cines \(series \d+ 'sax_\d+', .*\) lie in "
                           r"parallel planes but carry 4 different FrameOfReferenceUIDs \(an anonymiser's doing\?\), so "
                           r"they are not joined; if they are one short-axis stack, join them with --series UID,UID,\.\.\.\)",
                   tmp_path / "out", before, folder)
    uids = sorted({str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in folder.glob("*.dcm")
                   if pydicom.dcmread(p, stop_before_pixels=True).SeriesNumber >= 5})
    image = read_image(folder, series_uid=uids)
    np.testing.assert_array_equal(image.array, reference[1].array)
    assert image.meta["warnings"] == ["the 4 series joined with --series carry 4 different FrameOfReferenceUIDs: their "
                                      "positions are taken as one patient coordinate system, as asked (check that the "
                                      "patient did not move)"]
