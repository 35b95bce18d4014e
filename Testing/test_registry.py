"""`unetgan register`: entries with their hash and command, in the order that decides the defaults."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from unetgan.cli import main
from unetgan.errors import ModelError
from unetgan.registry import RESEARCH_REGISTRY_FILE, find_model, load_adapter, registry_file
from unetgan.weights import sha256_of

RESEARCH_MODELS = RESEARCH_REGISTRY_FILE.parent / "models"


@pytest.fixture
def registry(tmp_path):
    """A copy of the shipped registry, with its model files beside it."""
    shipped = registry_file()
    folder = tmp_path / "models"
    folder.mkdir()
    data = json.loads(shipped.read_text())
    for entry in data["models"]:
        shutil.copyfile(shipped.parent / entry["file"], folder / entry["file"])
    (folder / "models.json").write_text(json.dumps(data))
    return folder / "models.json"


def register(registry, file, name, *extra):
    return main(["register", str(file), "--name", name, "--kind", "adapter", "--target-vendor", "Siemens",
                 "--made-by", "a test", "--registry", str(registry), *extra])


def names(registry):
    return [m["name"] for m in json.loads(registry.read_text())["models"]]


def test_a_new_adapter_goes_last_or_first_and_first_is_what_the_vendor_name_picks(registry, tmp_path):
    original, segmenter = find_model("Siemens", "adapter", registry).name, find_model(None, "segmenter", registry).name
    copy = tmp_path / "another.safetensors"
    shutil.copyfile(RESEARCH_MODELS / "adapter_siemens_robust.safetensors", copy)
    assert register(registry, copy, "adapter-siemens-later") == 0
    assert names(registry)[-1] == "adapter-siemens-later"
    assert find_model("Siemens", "adapter", registry).name == original  # a new entry changes no default

    assert register(registry, copy, "adapter-siemens-later", "--first") == 0
    order = names(registry)
    adapters = [m["name"] for m in json.loads(registry.read_text())["models"] if m["kind"] == "adapter"]
    assert adapters[0] == "adapter-siemens-later" and order.count("adapter-siemens-later") == 1
    assert find_model("Siemens", "adapter", registry).name == "adapter-siemens-later"
    assert find_model(None, "segmenter", registry).name == segmenter  # other kinds keep their order
    entry = find_model("adapter-siemens-later", "adapter", registry)
    assert entry.sha256 and load_adapter("Siemens", registry).metadata["target_vendor"] == "Siemens"


def test_re_registering_keeps_the_place_and_checks_the_new_file(registry, tmp_path):
    before, default = names(registry), find_model("Siemens", "adapter", registry)
    changed = tmp_path / default.file.name
    shutil.copyfile(RESEARCH_MODELS / "adapter_ge_augunet.safetensors", changed)  # another file, the same name
    assert register(registry, changed, default.name) == 0
    assert names(registry) == before  # the default adapter stays the default
    assert find_model("Siemens", "adapter", registry).sha256 == sha256_of(changed) != default.sha256
    default.file.write_bytes(b"not weights")
    with pytest.raises(ModelError, match="SHA256"):
        load_adapter("Siemens", registry)


def test_a_stored_result_names_the_weight_files_it_was_measured_with(registry, tmp_path, monkeypatch):
    """evaluate's report (and scripts/results.py's --reuse) tell a result of the shipped adapter from one of the
    adapter that replaced it."""
    from unetgan.methods import weight_files

    monkeypatch.setenv("UNETGAN_REGISTRY", str(registry))
    before = weight_files("unetgan", None, "Siemens")
    shipped = find_model("Siemens", "adapter", registry)
    paired = find_model(load_adapter("Siemens", registry).metadata["segmenter"], "segmenter", registry)
    assert before == {"segmenter": paired.sha256, "adapter": shipped.sha256}
    assert weight_files("default") == {"segmenter": find_model(None, "segmenter", registry).sha256, "adapter": None}
    assert weight_files("clean")["segmenter"] == find_model("lvunet-clean", "segmenter").sha256  # research

    other = tmp_path / "other.safetensors"
    shutil.copyfile(RESEARCH_MODELS / "adapter_siemens_augunet.safetensors", other)
    assert register(registry, other, "adapter-siemens-other", "--first") == 0
    after = weight_files("unetgan", None, "Siemens")
    assert after["adapter"] == sha256_of(other) != before["adapter"]
    assert after["segmenter"] == find_model("lvunet-augment", "segmenter").sha256  # its own pairing


def test_an_adapter_paired_again_translates_the_same_and_is_segmented_by_the_new_segmenter(registry, tmp_path,
                                                                                         monkeypatch, capsys):
    import torch

    from unetgan.methods import weight_files
    from unetgan.networks.generator import load_generator

    monkeypatch.setenv("UNETGAN_REGISTRY", str(registry))
    out = tmp_path / "paired.safetensors"
    assert main(["pair-adapter", "Siemens", "--segmenter", "lvunet-clean", "-o", str(out)]) == 0
    original, paired = load_adapter("Siemens", registry), load_generator(out)
    # the shipped adapter may itself be a paired copy: what its weights were trained against stays the same
    trained_against = original.metadata.get("pairing", {}).get("trained_against", original.metadata["segmenter"])
    assert paired.metadata["segmenter"] == "lvunet-clean"
    assert paired.metadata["pairing"]["trained_against"] == trained_against  # kept on record
    assert paired.metadata["pairing"]["weights_from"]["sha256"] == find_model("Siemens", "adapter", registry).sha256
    assert paired.metadata["histogram_reference"] == original.metadata["histogram_reference"]
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(paired(x), original(x))
    assert weight_files("unetgan", None, str(out))["segmenter"] == find_model("lvunet-clean", "segmenter").sha256
    # pairing a paired copy again still remembers what the weights were trained against
    again = tmp_path / "again.safetensors"
    assert main(["pair-adapter", str(out), "--segmenter", "lvunet-augment", "-o", str(again)]) == 0
    assert load_generator(again).metadata["pairing"]["trained_against"] == trained_against
    assert main(["pair-adapter", "Siemens", "--segmenter", "no-such-model", "-o", str(tmp_path / "x.safetensors")]) != 0
    assert "unknown segmenter 'no-such-model'" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_adapter_choices_are_automatic_the_shipped_vendors_none_then_yours(tmp_path):
    """The list both front ends show, in this order, from a shipped registry and a user registry."""
    from UnetGANSlicerLib import models

    shipped = tmp_path / "shipped" / "models.json"
    shipped.parent.mkdir()
    (shipped.parent / "siemens.safetensors").write_bytes(b"x")
    shipped.write_text(json.dumps({"models": [
        {"name": "lvunet-x", "kind": "segmenter", "file": "x.safetensors"},
        {"name": "adapter-siemens-x", "kind": "adapter", "file": "siemens.safetensors", "target_vendor": "Siemens"},
        {"name": "adapter-ge-x", "kind": "adapter", "identity": True, "target_vendor": "GE"},
    ]}))
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"my adapter")
    user = tmp_path / "user" / "models.json"
    models.register_user_model(mine, "canon-2026", "adapter", user, target_vendor="Canon")

    options = models.adapter_choices(user_registry=user, registry=shipped)
    assert [(o.label, o.value) for o in options] == [
        ("Automatic", "auto"), ("Siemens", "adapter-siemens-x"), ("GE", "adapter-ge-x"), ("None", "none"),
        ("canon-2026 (yours)", str(mine.resolve()))]
    assert [o.user for o in options] == [False, False, False, False, True]
    assert options[2].choice.identity and options[2].choice.available  # an identity adapter needs no file
    assert [o.backend_argument() for o in options[:4]] == ["auto", "adapter-siemens-x", "adapter-ge-x", "none"]
    assert options[4].backend_argument() == str(mine.resolve())
    mine.write_bytes(b"replaced")  # a user's file must still be the one registered
    with pytest.raises(Exception, match="SHA256"):
        options[4].backend_argument()


SHIPPED = ["lvunet-sick-hearts", "lvunet-robust", "adapter-siemens-texture-small", "adapter-ge-texture-small"]


def test_the_shipped_registry_holds_what_the_product_runs_and_the_folder_only_its_files():
    """The Slicer extension (CMakeLists' resource list) and the wheel (pyproject's package data: every .json
    and .safetensors of the folder) ship Resources/Models: it holds the shipped registry's files, nothing else."""
    import re
    import tomllib

    shipped = json.loads(registry_file().read_text())["models"]
    assert [m["name"] for m in shipped] == SHIPPED
    folder = registry_file().parent
    needed = {m["file"] for m in shipped} | {"models.json", "source_histogram.json"}  # histmatch's reference
    assert {p.name for p in folder.iterdir()} == needed
    cmake = (folder.parent.parent / "CMakeLists.txt").read_text()
    assert set(re.findall(r"Resources/Models/(\S+)", cmake)) == needed
    pyproject = tomllib.loads((folder.parent.parent.parent / "pyproject.toml").read_text())
    assert "Resources.Models" in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    patterns = pyproject["tool"]["setuptools"]["package-data"]["Resources.Models"]
    assert {p.name for pattern in patterns for p in folder.glob(pattern)} == needed
    for entry in shipped:  # each with its hash and the command that made it
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) and entry["command"], entry["name"]
        assert sha256_of(folder / entry["file"]) == entry["sha256"], entry["name"]


def test_user_lists_show_only_shipped_models():
    from UnetGANSlicerLib import models

    nobody = registry_file().parent / "no-user-registry.json"  # absent: no user adapters
    listed = {c.name for c in models.available_models(user_registry=nobody)}
    assert listed == set(SHIPPED)
    research = {m["name"] for m in json.loads(RESEARCH_REGISTRY_FILE.read_text())["models"]}
    assert research and not listed & research
    assert [(o.label, o.value) for o in models.adapter_choices(user_registry=nobody)] == [
        ("Automatic", "auto"), ("Siemens", "adapter-siemens-texture-small"), ("GE", "adapter-ge-texture-small"), ("None", "none")]


def test_research_names_resolve_after_the_shipped_ones_and_only_where_the_research_registry_is(monkeypatch, tmp_path):
    research = json.loads(RESEARCH_REGISTRY_FILE.read_text())["models"]
    for raw in research:  # every research entry keeps its file, hash and made-by command
        entry = find_model(raw["name"], raw["kind"])
        assert entry.file.parent == RESEARCH_MODELS and sha256_of(entry.file) == raw["sha256"] and raw["command"]
    assert find_model("Siemens", "adapter").name == "adapter-siemens-texture-small"  # shipped first
    assert find_model("GE", "adapter").name == "adapter-ge-texture-small"
    assert find_model(None, "segmenter").name == "lvunet-sick-hearts"
    # as in the wheel or the Slicer extension, where there is no research/ folder
    monkeypatch.setenv("UNETGAN_RESEARCH_REGISTRY", str(tmp_path / "absent.json"))
    with pytest.raises(ModelError, match="unknown segmenter 'lvunet-clean'"):
        find_model("lvunet-clean", "segmenter")
    assert find_model("GE", "adapter").name == "adapter-ge-texture-small"


def test_the_previous_ge_adapter_is_an_identity_without_weights_and_translates_as_its_weights_did():
    """adapter-ge, the GE adapter before adapter-ge-texture-small (a research model now, kept for comparison)."""
    import torch

    from unetgan.inference import translate_slices

    entry = find_model("adapter-ge", "adapter")
    assert entry.identity and entry.file.suffix == ".json" and entry.file.parent == RESEARCH_MODELS
    generator = load_adapter("adapter-ge")
    metadata = json.loads(entry.file.read_text())
    assert generator.is_identity() and generator.metadata["segmenter"] == "lvunet-sick-hearts"
    assert len(generator.metadata["histogram_reference"]) == 257  # its histogram matching to Philips
    # the weights it replaces (their last convolution all zeros), on record
    assert metadata["made_from"] == {"file": "adapter_ge_robust.safetensors",
                                     "sha256": "dbe30aa2e57dc75b158cce9682bd6d25d6c4a9754c89b56311bd8381a4f571f9"}
    slices = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        through_network = ((generator(slices * 2 - 1) + 1) / 2).clamp(0, 1)
    assert torch.allclose(translate_slices(generator, slices, "cpu"), through_network, atol=1e-6)
    assert torch.allclose(through_network, slices.clamp(0.0025, 0.9975), atol=1e-5)  # the image as it is


def test_automatic_choice_for_a_ge_study_is_the_shipped_ge_adapter():
    import numpy as np

    from unetgan.adapter_choice import choose_adapter
    from unetgan.io.geometry import Geometry, ImageData

    image = ImageData(np.zeros((1, 2, 16, 16), np.float32), Geometry((1.5, 1.5, 8.0)))
    for manufacturer in ("GE MEDICAL SYSTEMS", "GE Healthcare"):
        assert choose_adapter(image, manufacturer).adapter == "adapter-ge-texture-small"
    assert choose_adapter(image, "SIEMENS").adapter == "adapter-siemens-texture-small"
    assert choose_adapter(image, "Philips Medical Systems").adapter == "none"


def test_the_identity_adapter_is_paired_and_registered_as_a_metadata_file(registry, tmp_path):
    from unetgan.networks.generator import load_identity_adapter
    from unetgan.registry import pair_adapter, register_model

    # the research registry's identity adapter, added to the copy of the shipped registry
    data = json.loads(registry.read_text())
    identity = next(m for m in json.loads(RESEARCH_REGISTRY_FILE.read_text())["models"] if m["name"] == "adapter-ge")
    shutil.copyfile(RESEARCH_REGISTRY_FILE.parent / identity["file"], registry.parent / Path(identity["file"]).name)
    data["models"].append(identity | {"file": Path(identity["file"]).name})
    registry.write_text(json.dumps(data))
    place = len(data["models"]) - 1
    out = tmp_path / "adapter_ge_identity.json"
    pair_adapter("adapter-ge", "lvunet-robust", out, registry)
    paired = load_identity_adapter(out)
    assert paired.is_identity() and paired.metadata["segmenter"] == "lvunet-robust"
    assert paired.metadata["pairing"]["weights_from"]["sha256"] == find_model("adapter-ge", "adapter", registry).sha256
    assert paired.metadata["histogram_reference"] == load_adapter("adapter-ge", registry).metadata["histogram_reference"]
    entry = register_model(out, "adapter-ge", "adapter", "a test", "Philips", "GE", registry=registry)
    assert entry.identity and entry.sha256 == sha256_of(out)
    assert json.loads(registry.read_text())["models"][place]["identity"] is True  # kept its place
    assert load_adapter("adapter-ge", registry).metadata["segmenter"] == "lvunet-robust"
    not_identity = tmp_path / "other.json"
    not_identity.write_text('{"segmenter": "x"}')
    with pytest.raises(ModelError, match="not an identity adapter"):
        register_model(not_identity, "adapter-x", "adapter", "a test", registry=registry)
