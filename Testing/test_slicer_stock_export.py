"""The module's Export in an imitation of a stock 3D Slicer 5.12: matplotlib absent, pydicom 3.0.2.

No Slicer ships matplotlib. Each test runs this file as a subprocess in which a meta-path finder makes
every ``import matplotlib...`` fail (as in a Slicer where it was never installed); the project's
environment pins pydicom at the version Slicer 5.12 ships. In that process a DICOM cine and a NIfTI
cine are exported through ``UnetGANSlicerLib.export`` (what the panel's Export calls): the SEG, the SR,
the measurements and the segmentation files are written, the PDF is skipped, and the note the panel
shows says why. The dependency check of the same process asks for matplotlib and highdicom.

(A second virtual environment with Slicer's exact package set would take minutes to build and
needs the network; blocking the import is the part of "stock Slicer" that matters for Export.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

TESTS = Path(__file__).resolve().parent
MODULE_DIR = TESTS.parent / "UnetGANSlicer"
SLICER_5_12_PYDICOM = "3.0.2"  # SuperBuild/External_python-dicom-requirements.cmake of Slicer 5.12


class _NoMatplotlib:
    """A meta-path finder that refuses matplotlib, as a Python without it does."""

    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _export_in_stock_slicer(out: Path) -> dict:
    """Runs in the subprocess (matplotlib blocked): export a DICOM cine and a NIfTI cine; report what happened."""
    import numpy as np
    import pydicom

    from unetgan.dicom_outputs import PDF_SKIPPED, pdf_available
    from UnetGANSlicerLib import context, dependencies, dicom_export, export, loading, vendor

    import test_slicer_dicom_export as case

    scene = context.setup_standalone()["scene"]
    requirements = MODULE_DIR / "Resources" / "requirements.txt"
    report = dependencies.check(requirements)
    from unetgan.io.images import read_image
    from unetgan.phantom import make_study, write_study

    paths = write_study(make_study("GE", seed=3, n_phases=3, n_slices=3, matrix=48), out / "source", fmt="dicom",
                        name="ge")
    image = read_image(paths["dicom_dir"])
    labels = np.where(read_image(paths["labels"]).frames <= 2, read_image(paths["labels"]).frames, 0).astype(np.uint8)
    uids = [[str(pydicom.dcmread(row[t], stop_before_pixels=True).SOPInstanceUID) for row in image.meta["files"]]
            for t in range(image.frames.shape[0])]
    loaded = case.load_as_slicer_does(scene, image, uids)
    result = case.result_in_scene(scene, loaded, labels[:, ::-1], image.frames[:, ::-1] * 0.5)
    dicom_files = export.save_result(result, out / "dicom", "ge", database=vendor.FolderDicomIndex(paths["dicom_dir"]))

    nifti = loading.add_image(image.frames, image.geometry, "nifti cine", scene, image.trigger_times_ms)
    nifti_result = case.result_in_scene(scene, nifti, labels, None)
    nifti_files = export.save_result(nifti_result, out / "nifti", "nifti")
    return {
        "pydicom": pydicom.__version__,
        "pdf_available": pdf_available(),
        "matplotlib_loaded": any(name.split(".")[0] == "matplotlib" for name in sys.modules),
        "to_install": report.to_install,
        "dicom_groups": {group: [p.name for p in files] for group, files in dicom_files.items()},
        "nifti_groups": {group: [p.name for p in files] for group, files in nifti_files.items()},
        "dicom_written": sorted(p.name for p in (out / "dicom").iterdir() if p.is_file()),
        "nifti_written": sorted(p.name for p in (out / "nifti").iterdir() if p.is_file()),
        "skipped_note": PDF_SKIPPED,
        "nifti_note": dicom_export.no_dicom_note(nifti_result.input),
    }


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    out = tmp_path_factory.mktemp("stock")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(MODULE_DIR), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, __file__, str(out)], capture_output=True, text=True, env=env, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_matplotlib_is_really_absent_and_pydicom_is_slicers(stock):
    assert stock["pydicom"] == SLICER_5_12_PYDICOM
    assert stock["pdf_available"] is False and stock["matplotlib_loaded"] is False
    asked = {line.split(">")[0] for line in stock["to_install"]}
    assert "matplotlib" in asked  # declared, so the module offers to install it


def test_export_writes_seg_sr_and_measurements_without_matplotlib(stock):
    written = set(stock["dicom_written"])
    assert {"ge_segmentation.seg.dcm", "ge_segmentation_ED.seg.dcm", "ge_segmentation_ES.seg.dcm",
            "ge_measurements.sr.dcm", "ge_measurements.json", "ge_measurements.csv", "ge_volumes.csv",
            "ge_labelmap.nrrd", "ge_segmentation.seq.nrrd"} <= written
    assert "ge_report.pdf" not in written and "report" not in stock["dicom_groups"]
    assert "matplotlib" in stock["skipped_note"] and "PDF report was not written" in stock["skipped_note"]


def test_export_of_a_volume_without_dicom_origin_writes_its_files_and_says_no_pdf(stock):
    written = set(stock["nifti_written"])
    assert {"nifti_measurements.json", "nifti_labelmap.nrrd", "nifti_segmentation.seq.nrrd"} <= written
    assert not any(name.endswith((".pdf", ".dcm")) for name in written)
    assert stock["nifti_note"].endswith("no PDF either")


if __name__ == "__main__":  # the stock-Slicer imitation: matplotlib cannot be imported in this process
    sys.meta_path.insert(0, _NoMatplotlib())
    print(json.dumps(_export_in_stock_slicer(Path(sys.argv[1]))))
