"""Train adapter in the panel: the shipped adapters' recipe by default (histogram
matching, the paired augmented LV-Unet), and the new adapter registered with its SHA256 in a user
registry so the module lists it after a restart (the backend run itself is stubbed here; it is
tested in test_training.py)."""
from __future__ import annotations

import json

import pytest

from unetgan.errors import InputError
from UnetGANSlicerLib import models, training, vendor
from UnetGANSlicerLib.runner import RunOutput


@pytest.fixture
def folders(tmp_path):
    target, source = tmp_path / "canon images", tmp_path / "philips images"
    target.mkdir()
    source.mkdir()
    return target, source


@pytest.fixture
def fake_backend(monkeypatch):
    seen = []

    def run(arguments, progress=None, cancel=None, log=None):
        seen.append(arguments)
        output = arguments[arguments.index("-o") + 1]
        with open(output, "wb") as stream:
            stream.write(b"adapter weights")
        return RunOutput(returncode=0, stdout=[json.dumps({"adapter": output, "iterations": 20})])

    monkeypatch.setattr(training, "run_backend", run)
    return seen


def test_the_shipped_recipe_is_the_default(folders, tmp_path):
    arguments = training.train_arguments(*folders, tmp_path / "a.safetensors", "Canon", 100, None, "auto")
    assert "--histogram-match" in arguments
    assert arguments[arguments.index("--lvunet") + 1] == training.PAIRED_SEGMENTER
    assert training.PAIRED_SEGMENTER in {c.name for c in models.available_models("segmenter")}
    chosen = training.train_arguments(*folders, tmp_path / "a.safetensors", "Canon", 100, "my_unet.safetensors", "cpu")
    assert chosen[chosen.index("--lvunet") + 1] == "my_unet.safetensors"


def test_a_trained_adapter_is_listed_after_a_restart(folders, tmp_path, fake_backend, monkeypatch):
    registry = tmp_path / "settings" / "UnetGANSlicer" / "models.json"
    monkeypatch.setenv(models.USER_REGISTRY_ENV, str(registry))
    before = models.available_models("adapter")
    path = training.train_adapter(*folders, vendor="Canon", iterations=20, output=tmp_path / "settings" / "Canon.safetensors",
                                  user_registry=registry)
    again = training.train_adapter(*folders, vendor="Canon", iterations=20, user_registry=registry,
                                   output=tmp_path / "elsewhere" / "Canon.safetensors")
    # a fresh read of the registries, as after a restart
    listed = models.available_models("adapter")
    assert len(listed) == len(before) + 2
    mine = [c for c in listed if c.user]
    assert [c.name for c in mine] == ["adapter-Canon", "adapter-Canon (2)"]  # nothing replaced
    assert mine[0].file == path.resolve() and mine[1].file == again.resolve()
    assert mine[0].target_vendor == "Canon" and mine[0].source_vendor == "Philips" and mine[0].label.endswith("yours")
    assert mine[0].sha256 == models.file_sha256(path)
    entry = json.loads(registry.read_text())["models"][0]
    assert entry["file"] == str(path.resolve())  # outside the registry folder: absolute
    assert "--histogram-match" in entry["command"]
    # reaches the backend as its file, after the SHA256 check
    assert models.verified_argument(mine[0]) == str(path.resolve())
    assert vendor.adapter_for_vendor("Canon") == str(again.resolve())  # the newest one for the vendor
    path.write_bytes(b"changed")
    with pytest.raises(InputError, match="SHA256"):
        models.verified_argument(mine[0])


def test_user_registry_location(tmp_path, monkeypatch):
    monkeypatch.delenv(models.USER_REGISTRY_ENV, raising=False)
    assert models.user_registry_file(tmp_path) == tmp_path / "UnetGANSlicer" / "models.json"
    assert models.user_registry_file(None).name == "models.json"
