"""`unetgan batch` over an archive of phantom cines with a corrupt file and a non-cardiac image: real files,
real (tiny) networks, real worker processes and a real Dask LocalCluster with two workers on the loopback."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import write_tiny_adapter, write_tiny_lvunet
from test_cli import unetgan_here
from unetgan.batch import find_studies
from unetgan.io.images import read_image, write_image
from unetgan.io.geometry import Geometry
from unetgan.phantom import make_study, write_study

GOOD = ["GE/cine", "Siemens/cine", "dicom_study"]
OUTPUTS = ["labelmap.nrrd", "measurements.csv", "measurements.json", "translated.nrrd"]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as handle:
        return {row["study"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two phantom cine files of two vendors, a phantom DICOM study (short-axis cine, localiser and long-axis
    series in subfolders), a corrupt NIfTI, a non-cardiac image (noise) and a text file that is no study."""
    root, scratch = tmp_path_factory.mktemp("archive"), tmp_path_factory.mktemp("scratch")
    for seed, vendor in enumerate(("Siemens", "GE")):
        cine = write_study(make_study(vendor, seed=seed, n_phases=3, n_slices=3, matrix=96), scratch, name=vendor)["cine"]
        (root / vendor).mkdir()
        shutil.move(cine, root / vendor / "cine.nii.gz")
    dicom = write_study(make_study("Siemens", seed=7, n_phases=2, n_slices=3, matrix=96), scratch, fmt="dicom", name="d")
    shutil.copytree(dicom["dicom_dir"], root / "dicom_study")
    (root / "corrupt.nii.gz").write_bytes(b"\x1f\x8b\x08 this is not a gzip stream" * 20)
    noise = np.random.default_rng(0).uniform(0, 100, (2, 3, 64, 64)).astype(np.float32)
    write_image(noise, Geometry((2.0, 2.0, 8.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel())), root / "not_cardiac.nrrd")
    (root / "notes.txt").write_text("not a study")
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    # a random LV-Unet biased to label voxels, so that every study has volumes and an EF
    return write_tiny_adapter(folder / "adapter.safetensors"), write_tiny_lvunet(folder / "lvunet.safetensors", labels_voxels=True)


@pytest.fixture(scope="module")
def local_run(archive, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    before = _digest(archive)
    adapter, lvunet = models
    first = unetgan_here("batch", archive, "-o", out, "--adapter", adapter, "--model", lvunet, "--workers", "2")
    outputs_after_first = _digest(out)
    second = unetgan_here("batch", archive, "-o", out, "--adapter", adapter, "--model", lvunet, "--workers", "2")
    return {"out": out, "first": first, "second": second, "outputs_after_first": outputs_after_first,
            "inputs_before": before, "inputs_after": _digest(archive)}


def test_every_good_study_has_its_outputs_and_a_row_with_ef_and_the_bad_ones_a_reason(local_run, archive):
    first, out = local_run["first"], local_run["out"]
    assert first.returncode == 1, first.stderr  # some studies failed
    assert "FAILED corrupt: cannot read corrupt.nii.gz" in first.stderr
    assert "5 studies: 4 ok" in first.stdout
    rows = _summary(out)
    assert sorted(rows) == sorted(GOOD + ["corrupt", "not_cardiac"])
    for name in GOOD:
        row = rows[name]
        assert row["status"] == "ok" and row["reason"] == ""
        assert set(OUTPUTS) <= {p.name for p in (out / name).iterdir()}  # DICOM studies get DICOM results too
        measurements = json.loads((out / name / "measurements.json").read_text())
        assert float(row["ef_percent"]) == measurements["ef_percent"] and float(row["edv_ml"]) > 0
        assert float(row["mass_g"]) == measurements["myocardial_mass_ed_g"] and float(row["seconds"]) > 0
        assert row["adapter"].endswith("adapter.safetensors")
        source = archive / name if name == "dicom_study" else archive / f"{name}.nii.gz"
        assert read_image(out / name / "labelmap.nrrd").array.shape == read_image(source).array.shape
    assert rows["dicom_study"]["vendor"] == "Siemens"  # from the phantom's Manufacturer tag
    assert rows["GE/cine"]["vendor"] == ""  # an image file does not say
    assert rows["corrupt"]["status"] == "failed" and "cannot read corrupt.nii.gz" in rows["corrupt"]["reason"]
    assert not (out / "corrupt").exists()  # nothing partial
    assert rows["not_cardiac"]["status"] == "ok" and rows["not_cardiac"]["warnings"]  # warned, with the reason
    assert local_run["inputs_after"] == local_run["inputs_before"]  # inputs only read


def test_a_rerun_skips_the_completed_studies_and_retries_the_failed_one(local_run):
    second, out = local_run["second"], local_run["out"]
    assert second.returncode == 1 and "5 studies: 4 already done, 1 to run" in second.stderr
    after = _digest(out)
    for name in GOOD + ["not_cardiac"]:  # no work twice: their outputs are the very same files
        for output in OUTPUTS:
            key = f"{name}/{output}"
            assert after[key] == local_run["outputs_after_first"][key]
    rows = _summary(out)
    assert rows["corrupt"]["status"] == "failed"
    assert all(rows[name]["status"] == "ok" and float(rows[name]["seconds"]) > 0 for name in GOOD)


def test_a_dask_cluster_gives_the_same_results_from_a_csv_list(local_run, archive, models, tmp_path):
    """Two Dask worker processes on the loopback; the studies listed in a CSV (one of them missing)."""
    from distributed import LocalCluster

    listing = tmp_path / "studies.csv"
    names = GOOD + ["corrupt", "not_cardiac"]
    inputs = {name: (archive / name if name == "dicom_study" else
                     next(archive.glob(f"{name}.*")) if "/" not in name else archive / f"{name}.nii.gz") for name in names}
    with open(listing, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input", "study"])
        writer.writerows([[str(inputs[name]), name] for name in names] + [["absent/cine.nii.gz", "absent"]])
    adapter, lvunet = models
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        result = unetgan_here("batch", listing, "-o", out, "--adapter", adapter, "--model", lvunet,
                         "--scheduler", cluster.scheduler_address)
    assert result.returncode == 1, result.stderr
    rows, local = _summary(out), _summary(local_run["out"])
    assert rows["absent"]["status"] == "failed" and "input not found" in rows["absent"]["reason"]
    for name in names:
        same = {k: v for k, v in rows[name].items() if k != "seconds"}
        assert same == {k: v for k, v in local[name].items() if k != "seconds"}
    for name in GOOD:  # the same masks, voxel for voxel
        np.testing.assert_array_equal(read_image(out / name / "labelmap.nrrd").array,
                                      read_image(local_run["out"] / name / "labelmap.nrrd").array)


def test_studies_are_found_and_named_by_their_place_in_the_tree(archive, tmp_path):
    out = archive / "results"  # an output folder inside the inputs is not scanned
    (out / "old").mkdir(parents=True)
    shutil.copy(archive / "not_cardiac.nrrd", out / "old" / "translated.nrrd")
    names = [s.name for s in find_studies(archive, out)]
    assert names == ["GE/cine", "Siemens/cine", "corrupt", "dicom_study", "not_cardiac"]
    shutil.rmtree(out)
    twins = tmp_path / "twins"
    twins.mkdir()
    for name in ("a.nii.gz", "a.nrrd", "b.mha"):
        (twins / name).write_bytes(b"")
    assert [s.name for s in find_studies(twins, tmp_path / "o")] == ["a_nii_gz", "a_nrrd", "b"]


@pytest.mark.parametrize("case", ["missing", "csv-without-input", "workers", "outputs-over-inputs", "empty"])
def test_usage_errors_are_one_error_line_and_exit_code_2(case, tmp_path, archive):
    args = {"missing": [tmp_path / "nowhere", "-o", tmp_path / "o"],
            "csv-without-input": [tmp_path / "list.csv", "-o", tmp_path / "o"],
            "workers": [archive, "-o", tmp_path / "o", "--workers", "0"],
            "outputs-over-inputs": [archive, "-o", archive],
            "empty": [tmp_path / "empty", "-o", tmp_path / "o"]}[case]
    (tmp_path / "list.csv").write_text("path,name\nx.nii.gz,x\n")
    (tmp_path / "empty").mkdir()
    result = unetgan_here("batch", *args)
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("ERROR: "), result.stderr
