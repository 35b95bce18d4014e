"""A whole DICOM study in, the short-axis cine found, the adapter from the
Manufacturer; bad DICOM refused with one `ERROR:` line, nothing written, the input unchanged.

Every study is the phantom's DICOM output (a short-axis cine, a localiser and a long-axis cine),
made here and then edited with pydicom; never ../shared.
"""
from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

from test_cli import unetgan_here
from test_reliability import assert_refused, fingerprint
from unetgan.adapter_choice import choose_adapter, vendor_of
from unetgan.io.images import read_image
from unetgan.phantom import make_study, write_study
from unetgan.registry import find_model

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A GE phantom study: 2 phases x 3 slices of 48 x 48, plus a localiser and a long-axis cine."""
    return write_study(make_study("GE", seed=4, n_phases=2, n_slices=3, matrix=48),
                       tmp_path_factory.mktemp("study"), fmt="dicom", name="ge")["dicom_dir"]


@pytest.fixture(scope="module")
def other_study_dir(tmp_path_factory):
    return write_study(make_study("GE", seed=5, n_phases=2, n_slices=3, matrix=48),
                       tmp_path_factory.mktemp("other"), fmt="dicom", name="other")["dicom_dir"]


def _copy(source, tmp_path, name="in"):
    return shutil.copytree(source, tmp_path / name)


def _short_axis_files(folder):
    return sorted(folder.glob("*.dcm"))  # the phantom puts the short-axis cine at the top of the study folder


def _edit(paths, edit):
    for path in paths:
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)


def _series_uids(folder) -> dict[str, str]:
    return {pydicom.dcmread(next((folder / sub).glob("*.dcm")), stop_before_pixels=True).SeriesDescription:
            pydicom.dcmread(next((folder / sub).glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID
            for sub in ("", "localizer", "lax_cine")}


# ---------------------------------------------------------------- the phantom writes a whole study

def test_phantom_study_has_three_series_with_unique_instances(tmp_path):
    """More than 10 phases and slices: image UIDs made of (slice, phase) must not collide (1, 10) vs (11, 0)."""
    folder = write_study(make_study("Siemens", seed=1, n_phases=11, n_slices=11, matrix=48), tmp_path, fmt="dicom",
                         name="s")["dicom_dir"]
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")]
    assert len(headers) == 11 * 11 + 1 + 11
    assert len({ds.SOPInstanceUID for ds in headers}) == len(headers)
    assert len({ds.StudyInstanceUID for ds in headers}) == 1
    kinds = {ds.SeriesDescription: ds for ds in headers}
    assert len({ds.SeriesInstanceUID for ds in headers}) == 3 == len(kinds)
    assert "LOCALIZER" in kinds["Localizer (phantom)"].ImageType
    lax = [ds for ds in headers if ds.SeriesDescription.startswith("LAX")]
    assert len({tuple(ds.ImagePositionPatient) for ds in lax}) == 1 and len({ds.TriggerTime for ds in lax}) == 11


def test_the_short_axis_cine_is_found_among_the_series(study_dir):
    image = read_image(study_dir)
    assert image.array.shape == (2, 3, 48, 48)
    reason = image.meta["series"]["reason"]
    assert reason.startswith("series 1 'SA cine bSSFP (phantom)' (2 phases x 3 slices")
    assert "passed over" in reason and "a localiser" in reason and "one slice position" in reason


def test_two_equal_cines_are_refused_and_series_chooses(study_dir, other_study_dir, tmp_path):
    folder = _copy(study_dir, tmp_path)
    for path in _short_axis_files(other_study_dir):
        shutil.copy(path, folder / f"other_{path.name}")
    before = fingerprint(folder)
    result = unetgan_here("adapt-segment", folder, "-o", tmp_path / "out")
    assert_refused(result, r"mixes 2 DICOM series that fit a short-axis cine equally \[series 1 .*UID .*; series 1 "
                           r".*\]; put one cine series per folder or choose one with --series UID",
                   tmp_path / "out", before, folder)
    wanted = pydicom.dcmread(_short_axis_files(other_study_dir)[0]).SeriesInstanceUID
    image = read_image(folder, series_uid=wanted)
    assert image.meta["series"]["uid"] == wanted and "chosen with --series" in image.meta["series"]["reason"]
    expected = read_image(other_study_dir)
    np.testing.assert_array_equal(image.array, expected.array)


def test_description_breaks_a_tie(study_dir, other_study_dir, tmp_path):
    """A second multi-slice cine described as a 4-chamber view ranks below the short-axis one."""
    folder = _copy(study_dir, tmp_path)
    for path in _short_axis_files(other_study_dir):
        shutil.copy(path, folder / f"other_{path.name}")
    _edit(folder.glob("other_*.dcm"), lambda ds: setattr(ds, "SeriesDescription", "4CH cine stack"))
    image = read_image(folder)
    assert image.meta["series"]["description"] == "SA cine bSSFP (phantom)"
    assert "'4CH cine stack' (2 phases x 3 slices): its description does not name a short axis" in image.meta["series"]["reason"]


def test_unknown_series_uid_lists_the_series(study_dir, tmp_path):
    before = fingerprint(study_dir)
    result = unetgan_here("adapt-segment", study_dir, "-o", tmp_path / "out", "--series", "1.2.3")
    assert_refused(result, r"--series 1\.2\.3 is not in .*; its series: series 1 'SA cine", tmp_path / "out", before,
                   study_dir)


# ---------------------------------------------------------------- bad DICOM: one case each

def _no_cine(folder):
    for path in _short_axis_files(folder):
        path.unlink()


def _without(keyword):
    return lambda folder: _edit(_short_axis_files(folder), lambda ds: delattr(ds, keyword))


def _mixed_sizes(folder):
    def smaller(ds):
        pixels = ds.pixel_array[::2, ::2].copy()
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
    _edit(_short_axis_files(folder)[:1], smaller)


def _garbage_jpeg2000(folder, syntax, files):
    """The first `files` short-axis files declared as `syntax`, their pixel data a JPEG 2000 header and zeros."""
    def compress(ds):
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
        ds["PixelData"].VR = "OB"
    _edit(_short_axis_files(folder)[:files], compress)


def _undecodable(folder):
    """JPEG 2000 Part 2 (multi-component): a compression pydicom knows but has no decoder for."""
    _garbage_jpeg2000(folder, pydicom.uid.JPEG2000MC, files=2)


def _damaged_jpeg2000(folder):
    """JPEG 2000 that a decoder is installed for, but whose code stream is garbage."""
    _garbage_jpeg2000(folder, pydicom.uid.JPEG2000Lossless, files=1)


def _unknown_syntax(folder):
    """A transfer syntax UID pydicom does not know (as JPEG XL's are to pydicom 3.0): patched into the file meta."""
    for path in _short_axis_files(folder)[:2]:
        data = path.read_bytes()
        assert data.count(b"1.2.840.10008.1.2.1\x00") == 1  # Explicit VR Little Endian, padded to 20 bytes
        path.write_bytes(data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.99"))


BAD_STUDIES = {
    "no-usable-cine": (_no_cine, r"no short-axis cine in .*: series 3 'LAX cine bSSFP \(phantom\)' \(2 images, UID [\d.]+\): "
                                 r"one slice position: a long-axis or single-slice view; series 2 'Localizer \(phantom\)' "
                                 r"\(1 image, UID [\d.]+\): a localiser; expected a series with several slice positions"),
    "missing-pixel-spacing": (_without("PixelSpacing"), r"lack a usable PixelSpacing .*; expected 2 values in mm"),
    "missing-orientation": (_without("ImageOrientationPatient"),
                            r"IM\d+\.dcm lacks a usable ImageOrientationPatient .*; expected 6 direction cosines"),
    "mixed-sizes": (_mixed_sizes, r"the cine's images have different sizes \(48 x 48 \(5 images\), 24 x 24 \(1 images\)\)"),
    "undecodable-compression": (_undecodable, r"2 file\(s\) use the compressed transfer syntax JPEG 2000 Part 2 "
                                              r"Multi-component .*which no installed decoder reads; expected uncompressed "
                                              r"images"),
    "unknown-transfer-syntax": (_unknown_syntax, r"2 file\(s\) declare the transfer syntax 1\.2\.840\.10008\.1\.2\.99, "
                                                 r"which this pydicom does not know; expected uncompressed images"),
    "damaged-compressed-data": (_damaged_jpeg2000, r"cannot read pixel data of IM\d+\.dcm: pylibjpeg: .*J2K.*; "
                                                   r"the file is damaged or its compression is a variant"),
}


@pytest.mark.parametrize("case", sorted(BAD_STUDIES))
def test_bad_dicom_study_is_refused_with_one_error_line(case, study_dir, tmp_path):
    damage, expected = BAD_STUDIES[case]
    folder = _copy(study_dir, tmp_path)
    damage(folder)
    before = fingerprint(folder)
    result = unetgan_here("adapt-segment", folder, "-o", tmp_path / "out")
    assert_refused(result, expected, tmp_path / "out", before, folder)


# ---------------------------------------------------------------- the adapter from the Manufacturer

@pytest.mark.parametrize("manufacturer, vendor", [
    ("SIEMENS", "Siemens"), ("Siemens Healthineers", "Siemens"), ("GE MEDICAL SYSTEMS", "GE"), ("GE Healthcare", "GE"),
    ("Philips Medical Systems", "Philips"), ("Philips Healthcare", "Philips"), ("  philips  ", "Philips"),
    ("TOSHIBA_MEC", "Canon"), ("ACME Imaging", None), ("", None), (None, None), ("Gemini Scanners", None)])
def test_manufacturer_strings_name_the_vendor(manufacturer, vendor):
    assert vendor_of(manufacturer) == vendor


@pytest.mark.parametrize("manufacturer, vendor", [
    ("SIEMENS", "Siemens"), ("GE MEDICAL SYSTEMS", "GE"), ("Philips Medical Systems", None)])
def test_known_vendor_gets_its_adapter_without_looking_at_the_images(study_dir, manufacturer, vendor):
    adapter = "none" if vendor is None else find_model(vendor, "adapter").name  # the vendor's first adapter
    image = read_image(study_dir)
    image.array = None  # a choice by vendor never touches the pixels
    choice = choose_adapter(image, manufacturer)
    assert choice.adapter == adapter and choice.warning is None and choice.scores == {}
    assert manufacturer in choice.reason


def test_adapter_from_a_study_path_uses_its_manufacturer(study_dir):
    choice = choose_adapter(study_dir)  # the phantom writes Manufacturer "GE"
    ge = find_model("GE", "adapter").name  # the shipped GE adapter
    assert choice.adapter == ge and choice.reason == f"adapter {ge}: Manufacturer 'GE' is GE"


def test_unknown_vendor_gets_the_best_label_free_score_with_a_warning(tmp_path):
    """At a cardiac resolution (112 x 112, 3.1 mm): the networks must see a heart to score the candidates."""
    folder = write_study(make_study("Siemens", seed=5, n_phases=2, n_slices=3, matrix=112), tmp_path, fmt="dicom",
                         name="s")["dicom_dir"]
    choice = choose_adapter(read_image(folder), "ACME Imaging")
    assert set(choice.scores) == {"none", find_model("Siemens", "adapter").name, find_model("GE", "adapter").name}
    assert all(0.0 <= score <= 1.0 for score in choice.scores.values())
    assert choice.adapter == max(choice.scores, key=choice.scores.get)
    assert choice.warning.startswith("Manufacturer 'ACME Imaging' names no vendor we know, with no adapter of its own: "
                                     f"chose {'no adapter' if choice.entry is None else choice.adapter} as the closest")
