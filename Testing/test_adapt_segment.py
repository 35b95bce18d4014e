"""Adapt & segment and evaluation on phantom data, through the command line, with tiny real networks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import write_tiny_adapter
from test_cli import unetgan, unetgan_here
from unetgan.histogram import quantile_function, reference_from
from unetgan.inference import adapter_input
from unetgan.io.images import read_image
from unetgan.phantom import make_study, write_dataset, write_study


@pytest.fixture(scope="module")
def phantom_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    return write_dataset(folder, vendors=("Philips", "Siemens"), subjects=2, seed=1, n_phases=2, n_slices=3,
                         matrix=96, dev_subjects=1)


@pytest.fixture(scope="module")
def siemens_cine(tmp_path_factory):
    study = make_study("Siemens", seed=5, n_phases=3, n_slices=3, matrix=96)
    return write_study(study, tmp_path_factory.mktemp("cine"), fmt="nifti", name="siemens")["cine"]


def tiny_adapter(path, histogram_reference=None):
    extra = {} if histogram_reference is None else {"histogram_reference": histogram_reference.tolist()}
    return write_tiny_adapter(path, **extra)


def test_adapt_segment_writes_translation_labels_and_measurements_on_the_input_grid(tmp_path, siemens_cine, tiny_lvunet_file):
    adapter = tiny_adapter(tmp_path / "adapter.safetensors")
    before = siemens_cine.read_bytes()
    result = unetgan("adapt-segment", siemens_cine, "-o", tmp_path / "out", "--adapter", adapter,
                     "--model", tiny_lvunet_file, "--progress")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("PROGRESS")]
    assert progress == [f"PROGRESS {k} 3 adapt-segment" for k in (1, 2, 3)]
    image = read_image(siemens_cine)
    translated = read_image(tmp_path / "out" / "translated.nrrd")
    labels = read_image(tmp_path / "out" / "labelmap.nrrd")
    for output in (translated, labels):
        assert output.array.shape == image.array.shape
        np.testing.assert_allclose(output.geometry.spacing, image.geometry.spacing, rtol=1e-6)
        np.testing.assert_allclose(output.geometry.origin, image.geometry.origin, atol=1e-4)
        np.testing.assert_allclose(output.geometry.direction, image.geometry.direction, atol=1e-6)
    assert not np.allclose(translated.array, image.array), "the adapter did not change the image"
    measurements = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert len(measurements["frames"]) == 3 and measurements["adapter"] == str(adapter)
    assert siemens_cine.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["labelmap.nrrd", "measurements.csv",
                                                                   "measurements.json", "translated.nrrd"]


def test_adapter_trained_on_histogram_matched_images_matches_at_inference_too(tmp_path):
    source = make_study("Philips", seed=2, n_phases=2, n_slices=3, matrix=96).image[0]
    target = make_study("Siemens", seed=3, n_phases=2, n_slices=3, matrix=96).image[0]
    reference = reference_from([source])
    generator = tiny_adapter(tmp_path / "a.safetensors", reference)
    from unetgan.registry import load_adapter

    loaded = load_adapter(generator)
    matched = adapter_input(target, loaded)
    assert np.abs(quantile_function(matched) - reference).max() < 0.02
    assert np.abs(quantile_function(target) - reference).max() > 0.05  # the vendors did differ


def test_adapter_errors(tmp_path, siemens_cine, tiny_lvunet_file):
    result = unetgan_here("adapt-segment", siemens_cine, "-o", tmp_path / "out", "--adapter", "Toshiba",
                          "--model", tiny_lvunet_file)
    assert result.returncode == 2 and "unknown adapter 'Toshiba'" in result.stderr
    result = unetgan_here("adapt-segment", siemens_cine, "-o", tmp_path / "out", "--adapter", tiny_lvunet_file,
                          "--model", tiny_lvunet_file)
    assert result.returncode == 2 and "is not a Unet-GAN generator" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("method", ["clean", "histmatch", "unetgan"])
def test_evaluate_writes_the_summary_json(tmp_path, phantom_dataset, tiny_lvunet_file, method, monkeypatch):
    from unetgan import methods

    from unetgan.io.manifest import read_manifest

    volumes = [read_image(i.image).array for i in read_manifest(phantom_dataset, ["Philips"])]
    histogram = tmp_path / "histogram.json"
    from unetgan.histogram import save_reference

    save_reference(reference_from(volumes), histogram, "Philips")
    monkeypatch.setattr(methods, "SOURCE_HISTOGRAM", histogram)
    args = ["evaluate", "--manifest", phantom_dataset, "--vendor", "Siemens", "--split", "dev_labelled",
            "--method", method, "--model", tiny_lvunet_file, "--json", tmp_path / "eval.json"]
    if method == "unetgan":
        args += ["--adapter", tiny_adapter(tmp_path / "adapter.safetensors")]
    result = unetgan_here(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    summary = report["summary"]["Siemens"]
    assert summary["n"] == 2 and set(summary) >= {"blood_pool", "myocardium", "mean", "n"}
    assert 0.0 <= summary["mean"]["mean"] <= 1.0 and summary["blood_pool"]["sd"] >= 0.0
    assert [(v["subject"], v["phase"]) for v in report["per_volume"]] == [(report["per_volume"][0]["subject"], "ED"),
                                                                         (report["per_volume"][0]["subject"], "ES")]
    assert "Siemens" in result.stdout and "blood pool" in result.stdout
    if method == "unetgan":
        assert 0.0 <= report["per_volume"][0]["dice_translated_vs_original"] <= 1.0


def test_adapter_segments_with_the_lvunet_it_was_trained_against(tmp_path, siemens_cine, tiny_lvunet_file):
    paired = write_tiny_adapter(tmp_path / "paired.safetensors", segmenter=str(tiny_lvunet_file))
    result = unetgan_here("adapt-segment", siemens_cine, "-o", tmp_path / "out", "--adapter", paired)
    assert result.returncode == 0, result.stderr
    assert read_image(tmp_path / "out" / "labelmap.nrrd").array.shape == read_image(siemens_cine).array.shape
    # the name in the metadata is what gets loaded: a missing one is reported, not replaced silently
    orphan = write_tiny_adapter(tmp_path / "orphan.safetensors", segmenter="lvunet-retired")
    result = unetgan_here("adapt-segment", siemens_cine, "-o", tmp_path / "out2", "--adapter", orphan)
    assert result.returncode == 2 and "lvunet-retired" in result.stderr
    # --model still overrides the pairing
    result = unetgan_here("adapt-segment", siemens_cine, "-o", tmp_path / "out3", "--adapter", orphan,
                          "--model", tiny_lvunet_file)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("method", ["default", "unetgan"])
def test_evaluate_scores_exactly_what_the_command_line_writes(tmp_path, phantom_dataset, tiny_lvunet_file, method):
    """evaluate --method default is `segment`, --method unetgan --adapter A is `adapt-segment --adapter A`:
    Dice of the files those commands write equals the Dice evaluate reports, volume by volume."""
    from unetgan.evaluation import dice_per_structure
    from unetgan.io.manifest import load_item, read_manifest

    adapter = tiny_adapter(tmp_path / "adapter.safetensors") if method == "unetgan" else None
    args = ["evaluate", "--manifest", phantom_dataset, "--vendor", "Siemens", "--split", "dev_labelled",
            "--method", method, "--model", tiny_lvunet_file, "--json", tmp_path / "eval.json"]
    result = unetgan_here(*args, *(["--adapter", adapter] if adapter else []))
    assert result.returncode == 0, result.stderr
    reported = {(v["subject"], v["phase"]): v["dice"] for v in json.loads((tmp_path / "eval.json").read_text())["per_volume"]}
    for item in read_manifest(phantom_dataset, ["Siemens"], ["dev_labelled"]):
        volume = load_item(item)[0]
        out = tmp_path / f"{item.subject}_{item.phase}"
        if method == "default":
            run = unetgan_here("segment", item.image, "-o", out / "labels.nrrd", "--model", tiny_lvunet_file)
            labelmap = out / "labels.nrrd"
        else:
            run = unetgan_here("adapt-segment", item.image, "-o", out, "--adapter", adapter, "--model", tiny_lvunet_file)
            labelmap = out / "labelmap.nrrd"
        assert run.returncode == 0, run.stderr
        written = dice_per_structure(read_image(labelmap).array, volume.labels, volume.valid)
        assert written == pytest.approx(reported[(item.subject, item.phase)], nan_ok=True)


def test_the_allocator_is_tuned_per_study_memory_first_for_large_ones(tmp_path, monkeypatch):
    """glibc's mmap threshold: 32 MB (speed) for an ordinary study, 1 MB (peak memory) for a large one; set
    at every study, as a warm worker runs small and large ones in turn (docs/benchmarks.md measures both)."""
    from unetgan import pipeline
    from unetgan.io.images import Geometry, write_image
    from unetgan.phantom import make_study

    calls = []

    class FakeLibc:
        def mallopt(self, parameter, value):
            calls.append((parameter, value))

    monkeypatch.setattr(pipeline.ctypes, "CDLL", lambda name: FakeLibc())
    study = make_study("Siemens", seed=1, n_phases=2, n_slices=3, matrix=96)
    path = tmp_path / "cine.nrrd"
    write_image(study.image, Geometry(tuple(study.spacing)), path)
    pipeline.run_study(path, None, runtime="torch", tta="none")
    monkeypatch.setattr(pipeline, "LARGE_STUDY_BYTES", study.image.nbytes - 1)  # this study counts as large
    pipeline.run_study(path, None, runtime="torch", tta="none")
    assert calls == [(pipeline.M_MMAP_THRESHOLD, 32 << 20), (pipeline.M_MMAP_THRESHOLD, 1 << 20)]
