"""Reliability and security: every case of docs/reliability.md, fed through the real command line.

Bad input: one `ERROR:` line that says what is wrong and what is expected, exit code 2,
no traceback, nothing written, the input unchanged. Damaged or wrong models: refused
before any inference. Out-of-distribution input: results with `WARNING:` lines beside
them. Nothing lost on a crash, a cancel or an existing output. Same input and model:
bit-identical masks. The shipped models are used where the behaviour depends on them
(warnings, determinism); tiny random ones where only the plumbing matters.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import write_tiny_adapter, write_tiny_lvunet
from test_cli import unetgan, unetgan_here
from unetgan.dicom_outputs import DICOM_OUTPUTS
from unetgan.errors import Cancelled
from unetgan.io.images import Geometry, read_image, write_image
from unetgan.phantom import make_study, write_study

pytestmark = pytest.mark.timeout(120)  # never a hang

ADAPTER = "Siemens"  # the shipped adapter (and, through it, the shipped lvunet-clean)
OUTPUTS = ["labelmap.nrrd", "measurements.csv", "measurements.json", "translated.nrrd"]


# ---------------------------------------------------------------- data (made here, never ../shared)

@pytest.fixture(scope="module")
def study():
    """A Siemens phantom cine: 2 phases x 3 slices at 112 x 112 (3.1 mm), with an oblique slice orientation."""
    return make_study("Siemens", seed=5, n_phases=2, n_slices=3, matrix=112)


@pytest.fixture(scope="module")
def files(study, tmp_path_factory):
    """The study as a NIfTI cine and as a DICOM folder; a second DICOM series (another subject) to mix in."""
    folder = tmp_path_factory.mktemp("inputs")
    other = make_study("Siemens", seed=6, n_phases=2, n_slices=3, matrix=112)
    return {"cine": write_study(study, folder, fmt="nifti", name="siemens")["cine"],
            "dicom": write_study(study, folder / "dicom", fmt="dicom", name="siemens")["dicom_dir"],
            "other_dicom": write_study(other, folder / "other", fmt="dicom", name="other")["dicom_dir"]}


def geometry_of(study, **changes) -> Geometry:
    return Geometry(changes.get("spacing", study.spacing), changes.get("origin", study.origin),
                    changes.get("direction", study.direction))


def fingerprint(path) -> dict:
    """Names and SHA256 of a file or of every file under a folder (the input must never change)."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return {}
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def written(folder) -> list[str]:
    """Everything under an output folder, hidden staging folders and temporary files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def visible_lines(stderr: str) -> list[str]:
    """What a terminal shows: a progress bar that `evaluate` draws (\\r) and erases on error is not a line."""
    return [line.split("\r")[-1] for line in stderr.split("\n") if line.split("\r")[-1].strip()]


def assert_refused(result, expected: str, out_dir, before: dict, input_path):
    import re

    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = visible_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert "EDV" not in result.stdout and "blood pool" not in result.stdout, "a result was printed"
    assert written(out_dir) == [], "something was written"
    assert fingerprint(input_path) == before, "the input was changed"


# ---------------------------------------------------------------- 1. bad input

def _nrrd(path, sizes, directions=None, data=b"", kind="float"):
    """A NRRD file written by hand: headers the writers refuse to produce (empty, degenerate, huge)."""
    header = [f"NRRD0004", f"type: {kind}", f"dimension: {len(sizes)}", f"sizes: {' '.join(map(str, sizes))}",
              "endian: little", "encoding: raw"]
    if directions:
        header += ["space: left-posterior-superior", f"space directions: {directions}", "space origin: (0,0,0)"]
    path.write_bytes(("\n".join(header) + "\n\n").encode() + data)
    return path


def _volume(study, path, array=None, **changes):
    return write_image(study.image if array is None else array, geometry_of(study, **changes), path)


def _truncated(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _dicom_copy(files, tmp_path, edit=None):
    folder = tmp_path / "dicom_in"
    shutil.copytree(files["dicom"], folder)
    names = sorted(folder.glob("*.dcm"))
    if edit is not None:
        edit(folder, names)
    return folder


def _set_tag(names, tag, value):
    for name in names:
        ds = pydicom.dcmread(name)
        setattr(ds, tag, value)
        ds.save_as(name)


def _repeat_acquisition(folder, names):
    """The same series acquired twice into one folder (same SeriesInstanceUID, new image UIDs)."""
    for name in names:
        ds = pydicom.dcmread(name)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"again_{name.name}")


def _one_image(study):
    return np.ascontiguousarray(study.image[0])


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


def _corrupt_nifti_header(study, path):
    """A real NIfTI whose dimensions field is overwritten (the NIfTI library then prints "** ERROR" lines itself)."""
    sitk.WriteImage(sitk.GetImageFromArray(_one_image(study)), str(path))
    data = bytearray(path.read_bytes())
    data[40:56] = b"\xff" * 16
    return _file(path, bytes(data))


BAD_INPUTS = {
    # id: (make the input in tmp_path, the ERROR line must match this)
    "2d-image": (lambda s, f, t: sitk.WriteImage(sitk.GetImageFromArray(_one_image(s)[0]), str(t / "x.nrrd")) or t / "x.nrrd",
                 r"x\.nrrd is a 2D image; expected a 3D short-axis stack or a 4D cine"),
    "colour-image": (lambda s, f, t: sitk.WriteImage(sitk.GetImageFromArray(np.stack([_one_image(s)] * 3, -1), isVector=True),
                                                     str(t / "x.nrrd")) or t / "x.nrrd",
                     r"has 3 components per voxel; expected a grey-level MRI"),
    "empty-volume": (lambda s, f, t: _file(t / "x.mha", b"ObjectType = Image\nNDims = 3\nDimSize = 96 96 0\n"
                                                         b"ElementType = MET_FLOAT\nElementDataFile = LOCAL\n"),
                     r"x\.mha is empty \(96 x 96 x 0 voxels\); expected a 3D stack or a 4D cine"),
    "empty-volume-nrrd": (lambda s, f, t: _nrrd(t / "x.nrrd", (96, 96, 0)), r"cannot read x\.nrrd: .*axis 2 size is zero.*; expected a NIfTI"),
    "zero-byte-file": (lambda s, f, t: _file(t / "x.nii.gz", b""),
                       r"cannot read x\.nii\.gz: not a readable image file .*; expected a NIfTI, NRRD or MHA file"),
    "constant-volume": (lambda s, f, t: _volume(s, t / "x.nrrd", np.full(s.image.shape, 7.0, np.float32)),
                        r"the image is constant \(or nearly so\): nothing to segment"),
    "nan-volume": (lambda s, f, t: _volume(s, t / "x.nrrd", np.full(s.image.shape, np.nan, np.float32)),
                   r"NaN or infinite values \(\d+ voxels\); expected finite intensities"),
    "inf-voxels": (lambda s, f, t: _volume(s, t / "x.nrrd", np.where(np.arange(s.image.size).reshape(s.image.shape) % 1000 == 7,
                                                                      np.inf, s.image).astype(np.float32)),
                   r"NaN or infinite values \(\d+ voxels\); expected finite intensities"),
    "pixels-0.1mm": (lambda s, f, t: _volume(s, t / "x.nrrd", spacing=(0.1, 0.1, 10.0)),
                     r"in-plane pixel spacing 0\.1 x 0\.1 mm is outside 0\.3-5 mm expected for cardiac cine MRI"),
    "pixels-50mm": (lambda s, f, t: _volume(s, t / "x.nrrd", spacing=(50.0, 50.0, 10.0)),
                    r"in-plane pixel spacing 50 x 50 mm is outside 0\.3-5 mm"),
    "slices-0.1mm": (lambda s, f, t: _volume(s, t / "x.nrrd", spacing=(3.0, 3.0, 0.1)),
                     r"slice spacing 0\.1 mm is outside 0\.5-40 mm expected for a short-axis stack"),
    "slices-50mm": (lambda s, f, t: _volume(s, t / "x.nrrd", spacing=(3.0, 3.0, 50.0)), r"slice spacing 50 mm is outside 0\.5-40 mm"),
    "anisotropic-pixels": (lambda s, f, t: _volume(s, t / "x.nrrd", spacing=(1.0, 4.0, 10.0)),
                           r"in-plane pixels are too anisotropic \(1 x 4 mm\); expected a ratio of at most 3"),
    "tiny-matrix": (lambda s, f, t: _volume(s, t / "x.nrrd", np.ascontiguousarray(s.image[..., :20, :20])),
                    r"slices of 20x20 pixels are too small for a short-axis cine"),
    "sheared-direction": (lambda s, f, t: _nrrd(t / "x.nrrd", (64, 64, 3), "(3,0,0) (1.5,3,0) (0,0,10)", bytes(64 * 64 * 3 * 4)),
                          r"direction cosines \(.*\) are not orthonormal: the voxel grid is sheared or degenerate; expected three "
                          r"perpendicular unit axes"),
    "degenerate-direction": (lambda s, f, t: _nrrd(t / "x.nrrd", (64, 64, 3), "(3,0,0) (3,0,0) (0,0,10)", bytes(64 * 64 * 3 * 4)),
                             r"cannot read x\.nrrd: .*Bad direction, determinant is 0"),
    "huge-volume": (lambda s, f, t: _nrrd(t / "x.nrrd", (4000, 4000, 200, 100), data=bytes(1000)),
                    r"x\.nrrd is 4000 x 4000 x 200 x 100 voxels: about \d+ GiB to process, more than this machine's \d+ GiB"),
    "truncated-nrrd": (lambda s, f, t: _truncated(_nrrd(t / "x.nrrd", (64, 64, 3), data=bytes(64 * 64 * 3 * 4)), 0.6),
                       r"cannot read x\.nrrd: .*fread got only"),
    "truncated-nifti": (lambda s, f, t: _truncated(sitk.WriteImage(sitk.GetImageFromArray(_one_image(s)), str(t / "x.nii"))
                                                   or t / "x.nii", 0.9),
                        r"cannot read x\.nii: the file is truncated \(\d+ of \d+ bytes\)"),
    "truncated-nifti-gz": (lambda s, f, t: _truncated(shutil.copyfile(f["cine"], t / "x.nii.gz"), 0.95),
                           r"cannot read x\.nii\.gz: the file is truncated or damaged"),
    "corrupt-nifti-header": (lambda s, f, t: _corrupt_nifti_header(s, t / "x.nii"),
                             r"cannot read x\.nii: .*not recognized as a NIFTI file"),
    "not-an-image": (lambda s, f, t: _file(t / "x.nrrd", b"patient notes, not an image"), r"cannot read x\.nrrd"),
    "missing-file": (lambda s, f, t: t / "nothing.nii.gz", r"input not found: .*nothing\.nii\.gz"),
    # DICOM folders (the study's own series, then damaged)
    "dicom-truncated-pixels": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: _truncated(n[0], 0.8)),
                               r"cannot read pixel data of IM\d+\.dcm"),
    "dicom-truncated-header": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: n[0].write_bytes(n[0].read_bytes()[:600])),
                               r"damaged DICOM file\(s\) IM\d+\.dcm \(image attributes missing: truncated\?\); expected complete"),
    "dicom-corrupt-file": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: n[0].write_bytes(bytes(3000))),
                           r"damaged DICOM file\(s\) IM\d+\.dcm"),
    "dicom-mixed-series": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: [shutil.copy(p, d / f"b_{p.name}")
                                                                          for p in f["other_dicom"].glob("*.dcm")]),
                           r"mixes 2 DICOM series .*; put one cine series per folder"),
    "dicom-repeated-acquisition": (lambda s, f, t: _dicom_copy(f, t, _repeat_acquisition),
                                   r"slice \d of \d \(at .* mm\) has 2 images at trigger time .* ms \(IM.*\); the folder "
                                   r"mixes acquisitions or repeats images"),
    "dicom-missing-image": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: n[0].unlink()),
                            r"the cine is incomplete: slice \d of 3 \(at .* mm\) has no image at phase \d of 2 \(trigger time .* ms\); "
                            r"too many phases are missing to measure it \(1 of 2 complete\)"),
    "dicom-skewed-orientation": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: _set_tag(n, "ImageOrientationPatient",
                                                                                          [1, 0, 0, 0.5, 0.866025, 0])),
                                 r"ImageOrientationPatient \[1, 0, 0, 0\.5, 0\.866, 0\] is not two perpendicular unit vectors"),
    "dicom-mixed-orientations": (lambda s, f, t: _dicom_copy(f, t, lambda d, n: _set_tag(n[:1], "ImageOrientationPatient",
                                                                                          [0, 1, 0, 0, 0, -1])),
                                 r"images have different orientations .*; expected one short-axis stack"),
    "dicom-no-images": (lambda s, f, t: _file((t / "folder").mkdir() or t / "folder" / "README.txt", b"notes").parent,
                        r"no DICOM images found in"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_error_line_and_writes_nothing(case, study, files, tmp_path):
    make, expected = BAD_INPUTS[case]
    source = tmp_path / "in"
    source.mkdir()
    input_path = make(study, files, source)
    before = fingerprint(input_path)
    out = tmp_path / "out"
    result = unetgan_here("adapt-segment", input_path, "-o", out, "--adapter", ADAPTER)
    assert_refused(result, expected, out, before, input_path)


def test_bad_input_in_a_separate_process(tmp_path, study):
    """The same contract end to end: one line on stderr (no library noise), exit code 2, nothing written."""
    bad = _corrupt_nifti_header(study, tmp_path / "bad.nii")  # the NIfTI library prints "** ERROR" lines of its own
    before = fingerprint(bad)
    result = unetgan("adapt-segment", bad, "-o", tmp_path / "out", "--adapter", ADAPTER)
    assert_refused(result, r"cannot read bad\.nii: .*not recognized as a NIFTI file", tmp_path / "out", before, bad)


# ---------------------------------------------------------------- 1. oblique and reflected geometry

def _exact_geometry(output, image):
    np.testing.assert_allclose(output.geometry.spacing, image.geometry.spacing, rtol=1e-12)
    np.testing.assert_allclose(output.geometry.origin, image.geometry.origin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(output.geometry.direction, image.geometry.direction, rtol=0, atol=1e-12)


@pytest.mark.parametrize("source", ["nifti", "dicom", "nrrd-reflected"])
def test_oblique_outputs_keep_the_input_direction_and_origin(source, study, files, tmp_path):
    if source == "nifti":
        input_path = files["cine"]
    elif source == "dicom":
        input_path = files["dicom"]
    else:  # a left-handed frame (det -1), another rotation and origin
        rotation = np.array(sitk.VersorTransform((0.3, -0.5, 0.8), 1.1).GetMatrix()).reshape(3, 3)
        rotation[:, 2] *= -1
        input_path = _volume(study, tmp_path / "reflected.nrrd", direction=tuple(rotation.ravel()),
                             origin=(-73.25, 151.5, 12.125))
    image = read_image(input_path)
    axes = np.reshape(image.geometry.direction, (3, 3))
    assert np.abs(axes).max() < 0.99, "not oblique: every axis would be along a patient axis"
    before = fingerprint(input_path)
    result = unetgan_here("adapt-segment", input_path, "-o", tmp_path / "out", "--adapter", ADAPTER)
    assert result.returncode == 0, result.stderr
    expected = OUTPUTS + (DICOM_OUTPUTS if source == "dicom" else [])  # DICOM input: also SEG, SR, PDF
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    for name in ("labelmap.nrrd", "translated.nrrd"):
        output = read_image(tmp_path / "out" / name)
        assert output.array.shape == image.array.shape
        _exact_geometry(output, image)
    assert (read_image(tmp_path / "out" / "labelmap.nrrd").array > 0).any(), "no heart found in the phantom"
    assert fingerprint(input_path) == before


# ---------------------------------------------------------------- 3. out-of-distribution input: results with warnings

def _ct_like(study):
    """Hounsfield units: air -1000, lungs -850, soft tissue 40, bone 700: negative values, no bSSFP contrast."""
    t, z, rows, cols = study.image.shape
    yy, xx = np.mgrid[0:rows, 0:cols] / np.array([rows, cols])[:, None, None]
    ct = np.full((rows, cols), -1000.0)
    ct[((yy - 0.5) / 0.4) ** 2 + ((xx - 0.5) / 0.45) ** 2 < 1] = 40
    for side in (-0.2, 0.2):
        ct[((yy - 0.5) / 0.25) ** 2 + ((xx - 0.5 - side) / 0.12) ** 2 < 1] = -850
    ct[(yy - 0.8) ** 2 + (xx - 0.5) ** 2 < 0.05 ** 2] = 700
    noise = np.random.default_rng(0).normal(0, 20, study.image.shape)
    return (ct + noise).astype(np.float32)


def _heart_removed(study):
    image = study.image.copy()
    image[study.labels > 0] = np.median(image[study.labels == 0])
    return image


OUT_OF_DISTRIBUTION = {
    # which out-of-distribution check fires depends on the segmenter: a robust one finds a tiny implausible
    # "LV" in CT-like intensities where a fragile one finds none
    "ct-hounsfield": (_ct_like, r"no left ventricle found: is this a short-axis cardiac cine\?|low segmentation confidence|"
                               r"does not surround the blood pool|outside 10-500 mL"),
    "pure-noise": (lambda s: np.random.default_rng(1).normal(100, 30, s.image.shape).astype(np.float32),
                   r"no left ventricle found|low segmentation confidence"),
    "smooth-gradient": (lambda s: np.broadcast_to(np.linspace(0, 500, s.image.shape[2])[:, None]
                                                  * np.linspace(0.5, 1, s.image.shape[3]), s.image.shape).astype(np.float32),
                        # a texture-translating adapter paints faint structure into a featureless image: the segmenter
                        # may then find a tiny low-confidence "LV", which the confidence check flags
                        r"no left ventricle found|low segmentation confidence"),
    "heart-removed": (_heart_removed, r"low segmentation confidence|does not surround the blood pool|no left ventricle|"
                                      r"outside 10-500 mL|not brighter than the myocardium"),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_DISTRIBUTION))
def test_non_cardiac_input_gives_results_with_warnings(case, study, tmp_path):
    make, expected = OUT_OF_DISTRIBUTION[case]
    input_path = _volume(study, tmp_path / f"{case}.nrrd", make(study))
    before = fingerprint(input_path)
    result = unetgan_here("adapt-segment", input_path, "-o", tmp_path / "out", "--adapter", ADAPTER)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("WARNING: ") for line in lines), result.stderr
    assert any(__import__("re").search(expected, line) for line in lines), lines
    # the same warnings are saved beside the result (the Slicer module and the web page show them from there)
    saved = json.loads((tmp_path / "out" / "measurements.json").read_text())["warnings"]
    assert [f"WARNING: {w}" for w in saved] == lines
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == OUTPUTS
    assert read_image(tmp_path / "out" / "labelmap.nrrd").array.shape == study.image.shape
    assert fingerprint(input_path) == before


def test_warnings_reach_the_slicer_result(study, tmp_path, monkeypatch):
    """The MRML layer (what the Slicer module shows under the result) carries the backend's warnings."""
    import tempfile

    from UnetGANSlicerLib import adapt_and_segment, context
    from UnetGANSlicerLib.nodes import set_geometry

    import slicer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scene = context.setup_standalone()["scene"]
    try:
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "noise")
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(_ct_like(study)[0]))
        set_geometry(node, geometry_of(study))
        result = adapt_and_segment(node, adapter=ADAPTER, device="cpu")
        assert any(re.search(r"no left ventricle found|low segmentation confidence|does not surround|"
                             r"outside what a human left ventricle holds", w)
                   for w in result.warnings), result.warnings
        assert result.segmentation is not None and result.table is not None  # the result is there, beside the warning
    finally:
        scene.Clear(True)
    assert not list(tmp_path.glob("unetgan-slicer-*")), "temporary files left behind"


# ---------------------------------------------------------------- 7. determinism

def test_same_input_and_model_give_bit_identical_outputs(files, tmp_path):
    """Two separate processes, the shipped models: identical masks, translations and measurements."""
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        result = unetgan("adapt-segment", files["cine"], "-o", out, "--adapter", ADAPTER)
        assert result.returncode == 0, result.stderr
        # the phantom itself is in distribution; only the masks' consistency over the cycle may speak (the
        # phantom's own myocardium varies by about 13 % over its cycle, near the 15 % bound)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
        assert all("myocardial volume varies" in line for line in warnings), result.stderr
        runs.append(out)
    first, second = (read_image(out / "labelmap.nrrd") for out in runs)
    assert first.array.dtype == np.uint8 and (first.array > 0).sum() > 100
    assert first.array.tobytes() == second.array.tobytes()
    assert first.geometry == second.geometry
    assert read_image(runs[0] / "translated.nrrd").array.tobytes() == read_image(runs[1] / "translated.nrrd").array.tobytes()
    assert (runs[0] / "measurements.json").read_text() == (runs[1] / "measurements.json").read_text()


# ---------------------------------------------------------------- 2. damaged or wrong models: refused before inference

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return {"segmenter": write_tiny_lvunet(folder / "lvunet.safetensors"),
            "adapter": write_tiny_adapter(folder / "adapter.safetensors")}


def _damaged_model(case, kind, tiny_models, folder, monkeypatch):
    """A model argument for the case: a file, or a registry name with a registry made here."""
    good = tiny_models[kind]
    path = folder / f"{case}.safetensors"
    if case == "pickle":
        path.write_bytes(pickle.dumps(eval, protocol=2) + f"touch {folder / 'pwned'}".encode())
    elif case == "truncated":
        path.write_bytes(good.read_bytes()[:-700])
    elif case == "empty-file":
        path.write_bytes(b"")
    elif case == "other-architecture":
        shutil.copyfile(tiny_models["adapter" if kind == "segmenter" else "segmenter"], path)
    elif case == "foreign-safetensors":  # a valid safetensors file that this project did not write
        from safetensors.torch import save_file
        import torch

        save_file({"weight": torch.zeros(3, 3)}, str(path), metadata={"format": "pt"})
    elif case in ("sha256-mismatch", "registry-entry-incomplete", "registry-not-json"):
        registry = folder / "models.json"
        entry = {"name": "mine", "kind": kind, "file": str(good), "sha256": "0" * 64}
        if case == "registry-entry-incomplete":
            entry.pop("file")
        registry.write_text("{not json" if case == "registry-not-json" else json.dumps({"models": [entry]}))
        monkeypatch.setenv("UNETGAN_REGISTRY", str(registry))
        return "mine"
    return path


MODEL_CASES = {
    "pickle": r"is not a safetensors file \(pickled or damaged weights are never loaded\)",
    "truncated": r"is damaged or not a safetensors file",
    "empty-file": r"is not a safetensors file",
    "other-architecture": r"is not an LV-Unet|is not a Unet-GAN generator",
    "foreign-safetensors": r"is not an LV-Unet|was not written by UnetGANSlicer|is not a Unet-GAN generator|not a usable adapter",
    "sha256-mismatch": r"does not match its SHA256 in the registry: damaged or replaced; refusing to load it",
    "registry-entry-incomplete": r"model registry .*models\.json: entry 1 lacks file",
    "registry-not-json": r"model registry .*models\.json is not valid JSON",
}


@pytest.mark.parametrize("kind", ["segmenter", "adapter"])
@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_damaged_or_wrong_models_are_refused_before_inference(case, kind, study, files, tiny_models, tmp_path, monkeypatch):
    from unetgan import pipeline

    def no_inference(*args, **kwargs):
        raise AssertionError("inference started with a model that should have been refused")

    monkeypatch.setattr(pipeline, "adapt_and_segment", no_inference)
    model = _damaged_model(case, kind, tiny_models, tmp_path, monkeypatch)
    options = (["--adapter", "none", "--model", model] if kind == "segmenter"
               else ["--adapter", model, "--model", tiny_models["segmenter"]])
    before = fingerprint(files["cine"])
    result = unetgan_here("adapt-segment", files["cine"], "-o", tmp_path / "out", *options)
    assert_refused(result, MODEL_CASES[case], tmp_path / "out", before, files["cine"])
    assert not (tmp_path / "pwned").exists(), "code in the pickle ran"


# ---------------------------------------------------------------- 1. manifests and contour files through the CLI

def _labelled_dataset(study, folder):
    paths = write_study(study, folder, fmt="nifti", name="s1", cine=False)
    return paths


MANIFEST_CASES = {
    # id: (rows after the header, given the written files; expected message)
    "image-missing": (lambda p: "s1,Siemens,ED,gone.nii.gz,s1_ED_gt.nii.gz,dev\n", r"line 2: image not found: gone\.nii\.gz"),
    "label-missing": (lambda p: "s1,Siemens,ED,s1_ED.nii.gz,gone_gt.nii.gz,dev\n", r"line 2: label not found: gone_gt\.nii\.gz"),
    "label-absent": (lambda p: "s1,Siemens,ED,s1_ED.nii.gz,,dev\n", r"line 2: s1 ED has no label"),
    "label-wrong-shape": (lambda p: "s1,Siemens,ED,s1_ED.nii.gz,small_gt.nii.gz,dev\n", r"small_gt\.nii\.gz: label shape .* differs"),
    "label-fractional": (lambda p: "s1,Siemens,ED,s1_ED.nii.gz,float_gt.nii.gz,dev\n",
                         r"float_gt\.nii\.gz: labels must be small non-negative integers, found values \[0\.? +0\.5"),
    "label-damaged": (lambda p: "s1,Siemens,ED,s1_ED.nii.gz,broken_gt.nii.gz,dev\n", r"cannot read broken_gt\.nii\.gz"),
    "short-row": (lambda p: "s1,Siemens,ED,s1_ED.nii.gz\n", r"line 2: 4 of 6 values, missing label, split"),
    "unquoted-comma": (lambda p: "s1,Siemens,ED,s1,ED.nii.gz,s1_ED_gt.nii.gz,dev\n", r"line 2: 7 values for 6 columns"),
    "cine-as-3d-row": (lambda p: "s1,Siemens,ED,cine.nii.gz,s1_ED_gt.nii.gz,dev\n",
                       r"cine\.nii\.gz is a cine; manifest rows with phase 'ED' must be 3D volumes"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_manifest_errors_through_the_cli(case, study, tiny_models, tmp_path):
    paths = _labelled_dataset(study, tmp_path)
    reference = read_image(paths["ED_gt"])
    write_image(reference.array[:, :50, :50], reference.geometry, tmp_path / "small_gt.nii.gz")
    write_image(reference.array.astype(np.float32) * 0.5, reference.geometry, tmp_path / "float_gt.nii.gz")
    (tmp_path / "broken_gt.nii.gz").write_bytes(paths["ED_gt"].read_bytes()[:300])
    write_image(study.image, geometry_of(study), tmp_path / "cine.nii.gz")
    rows, expected = MANIFEST_CASES[case]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("subject,vendor,phase,image,label,split\n" + rows(paths))
    before = fingerprint(tmp_path)
    result = unetgan_here("evaluate", "--manifest", manifest, "--method", "clean", "--model", tiny_models["segmenter"],
                          "--json", tmp_path / "report" / "eval.json", "--device", "cpu")
    assert_refused(result, expected, tmp_path / "report", before, tmp_path)


def test_contour_file_with_a_bad_line_through_the_cli(files, tiny_models, tmp_path):
    """A Sunnybrook-style row: a DICOM cine folder (files named by number) and its contour folder."""
    cine = tmp_path / "cine"
    cine.mkdir()
    for number, name in enumerate(sorted(files["dicom"].glob("*.dcm")), start=1):
        shutil.copyfile(name, cine / f"{number}.dcm")
    contours = tmp_path / "contours"
    contours.mkdir()
    (contours / "IM-0001-0001-icontour-manual.txt").write_text("40.0 40.0\n60.0 4O.0\n60.0 60.0\n")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("subject,vendor,phase,image,label,split\ns1,Siemens,cine,cine,contours,dev\n")
    before = fingerprint(tmp_path)
    result = unetgan_here("evaluate", "--manifest", manifest, "--method", "clean", "--model", tiny_models["segmenter"],
                          "--json", tmp_path / "report" / "eval.json", "--device", "cpu")
    assert_refused(result, r"IM-0001-0001-icontour-manual\.txt line 2: expected 'x y' numbers, got '60\.0 4O\.0'",
                   tmp_path / "report", before, tmp_path)


# ---------------------------------------------------------------- 4. nothing lost

def test_existing_outputs_are_never_replaced_without_overwrite(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "labelmap.nrrd").write_text("precious")
    result = unetgan_here("adapt-segment", files["cine"], "-o", out, "--adapter", ADAPTER)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"ERROR: output exists: {out / 'labelmap.nrrd'}; pass --overwrite to replace")
    assert written(out) == ["labelmap.nrrd"] and (out / "labelmap.nrrd").read_text() == "precious"
    result = unetgan_here("adapt-segment", files["cine"], "-o", out, "--adapter", ADAPTER, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert written(out) == OUTPUTS and read_image(out / "labelmap.nrrd").array.dtype == np.uint8


def test_crash_while_writing_keeps_the_previous_outputs(files, tmp_path, monkeypatch):
    """The disk fills up after the first output file: one ERROR line, the earlier complete set is left as it was."""
    from unetgan import pipeline

    out = tmp_path / "out"
    assert unetgan_here("adapt-segment", files["cine"], "-o", out, "--adapter", ADAPTER).returncode == 0
    previous = fingerprint(out)
    calls = []

    def failing_write(array, geometry, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write_image(array, geometry, path, **kwargs)

    monkeypatch.setattr(pipeline, "write_image", failing_write)
    result = unetgan_here("adapt-segment", files["cine"], "-o", out, "--adapter", ADAPTER, "--overwrite")
    assert len(calls) == 2
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"ERROR: cannot write the outputs to {out}: No space left on device"
    assert fingerprint(out) == previous and written(out) == OUTPUTS, "a half-written set replaced the previous one"


def test_unwritable_output_folder_is_an_error_line(files, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = unetgan_here("adapt-segment", files["cine"], "-o", blocker / "out", "--adapter", ADAPTER)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"ERROR: cannot write to {blocker / 'out'}: Not a directory; "
                                     "expected a folder you can write to")
    assert blocker.read_text() == "not a folder"


def test_failed_image_write_leaves_no_partial_file(study, tmp_path, monkeypatch):
    """write_image is atomic: a writer that dies half-way leaves the old file and no temporary file."""
    from unetgan.io import images

    target = write_image(study.image, geometry_of(study), tmp_path / "x.nrrd")
    previous = target.read_bytes()

    def dying_writer(image, path, useCompression=False):
        with open(path, "wb") as handle:
            handle.write(b"NRRD0004\ntype: fl")
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(images.sitk, "WriteImage", dying_writer)
    with pytest.raises(RuntimeError, match="killed while writing"):
        write_image(study.image * 2, geometry_of(study), target)
    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nrrd"]


def test_cancel_leaves_nothing(files, tmp_path):
    from unetgan import pipeline

    done = []
    with pytest.raises(Cancelled):
        pipeline.adapt_segment_file(files["cine"], tmp_path / "out", ADAPTER, device="cpu",
                                    progress=lambda k, n: done.append(k), cancel=lambda: bool(done))
    assert done == [1]  # it was cancelled between frames
    assert written(tmp_path / "out") == []


def test_interrupt_in_the_cli_leaves_nothing(files, tmp_path, monkeypatch):
    """Ctrl-C during the run: `ERROR: interrupted`, exit code 130, nothing written."""
    from unetgan import pipeline

    original = pipeline.adapt_and_segment

    def interrupted_after_one_frame(*args, progress=None, **kwargs):
        def report(done, total):
            raise KeyboardInterrupt

        return original(*args, progress=report, **kwargs)

    monkeypatch.setattr(pipeline, "adapt_and_segment", interrupted_after_one_frame)
    before = fingerprint(files["cine"])
    result = unetgan_here("adapt-segment", files["cine"], "-o", tmp_path / "out", "--adapter", ADAPTER)
    assert result.returncode == 130 and result.stderr.strip() == "ERROR: interrupted"
    assert written(tmp_path / "out") == []
    assert fingerprint(files["cine"]) == before
