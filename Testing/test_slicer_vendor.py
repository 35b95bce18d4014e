"""`--adapter auto` in the Slicer module: the adapter from the DICOM Manufacturer of
the loaded series, found through the volume's instance UIDs in the DICOM database; "auto" for the
backend when the volume has no DICOM origin. Phantom DICOM series written by the project
(GE and Siemens), loaded into a real slicer-core scene.
"""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from unetgan.phantom import make_study
from unetgan.phantom.writer import write_study
from UnetGANSlicerLib import context, loading, vendor
from UnetGANSlicerLib.workflow import backend_arguments


class DicomDatabase(vendor.FolderDicomIndex):
    """ctkDICOMDatabase's calls over the series' folder, recording what the module asks."""

    def __init__(self, folder):
        super().__init__(folder)
        self.asked = []

    def instanceValue(self, uid, tag):  # noqa: N802 - the ctkDICOMDatabase name
        self.asked.append((uid, tag))
        return super().instanceValue(uid, tag)


@pytest.fixture
def scene():
    logics = context.setup_standalone()
    yield logics["scene"]
    logics["scene"].Clear(True)


@pytest.fixture(scope="module", params=["GE", "Siemens"])
def dicom_series(request, tmp_path_factory):
    study = make_study(request.param, seed=2, n_phases=2, n_slices=2, matrix=48)
    folder = tmp_path_factory.mktemp(request.param)
    paths = write_study(study, folder, fmt="dicom", name=request.param.lower())
    return request.param, paths["dicom_dir"]


def load_as_slicer_does(scene, folder):
    """The cine loaded into a sequence, with DICOM.instanceUIDs on its items as Slicer's DICOM plugins set it."""
    loaded = loading.load_image(folder, scene)
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sorted(folder.glob("*.dcm"))]
    for t in range(loaded.sequence.GetNumberOfDataNodes()):
        loaded.sequence.GetNthDataNode(t).SetAttribute(vendor.INSTANCE_UIDS_ATTRIBUTE, " ".join(uids))
    return loaded


def test_adapter_follows_the_dicom_manufacturer(scene, dicom_series):
    name, folder = dicom_series
    loaded = load_as_slicer_does(scene, folder)
    database = DicomDatabase(folder)
    choice = vendor.choose_adapter(loaded.volume, database)
    assert choice.vendor == name and choice.adapter == name
    assert choice.text == f"Automatic: {name}, from DICOM"
    assert choice.manufacturer and database.asked[0][1] == vendor.MANUFACTURER_TAG
    # what reaches the backend: the vendor, i.e. the same registry adapter `--adapter GE` picks
    arguments = backend_arguments("in.nrrd", "out", choice.adapter, None, "auto")
    assert arguments[arguments.index("--adapter") + 1] == name


def test_volume_without_dicom_origin_leaves_the_choice_to_the_backend(scene):
    from unetgan.io.images import Geometry

    loaded = loading.add_image(np.zeros((2, 3, 8, 8), np.float32), Geometry((1.0, 1.0, 8.0)), "nifti", scene)
    choice = vendor.choose_adapter(loaded.volume, database=None)
    assert choice.adapter == "auto" and choice.vendor is None and "no DICOM origin" in choice.text
    arguments = backend_arguments("in.nrrd", "out", choice.adapter, None, "auto")
    assert arguments[arguments.index("--adapter") + 1] == "auto"


def test_vendor_to_adapter():
    assert vendor.adapter_for_vendor("Philips") == "none"  # the segmenter's own vendor
    assert vendor.adapter_for_vendor("GE") == "GE"
    assert vendor.adapter_for_vendor("Canon") == "auto"  # no adapter: the label-free check decides
    assert vendor.adapter_for_vendor(None) == "auto"


def test_vendor_to_adapter_reads_the_registry_the_backend_runs(tmp_path, monkeypatch):
    import json

    from unetgan import registry as backend_registry
    from UnetGANSlicerLib import models

    own = tmp_path / "models.json"
    own.write_text(json.dumps({"models": [
        {"name": "adapter-x-canon", "kind": "adapter", "target_vendor": "Canon", "source_vendor": "Philips",
         "file": "missing.safetensors", "sha256": None}]}))
    monkeypatch.setenv(backend_registry.REGISTRY_ENV, str(own))
    monkeypatch.setenv(models.USER_REGISTRY_ENV, str(tmp_path / "no-user-models.json"))
    assert models.registry_file() == backend_registry.registry_file() == own
    assert vendor.adapter_for_vendor("Canon") == "Canon"  # `--adapter Canon` finds it in the same registry
    assert vendor.adapter_for_vendor("GE") == "auto"  # the bundled GE adapter is not in this registry
