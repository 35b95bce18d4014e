"""LV-Unet training end to end on tiny synthetic volumes: it learns, checkpoints, and resumes."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import ring_study
from unetgan.inference import segment
from unetgan.evaluation import dice_per_structure
from unetgan.io.images import Geometry, ImageData
from unetgan.io.manifest import LabelledVolume
from unetgan.registry import load_lvunet
from unetgan.errors import InputError
from unetgan.training.datasets import split_subjects
from unetgan.training.train_unet import UnetTrainConfig, train_unet


def ring_volumes(n_subjects: int, seed: int = 0) -> list[LabelledVolume]:
    volumes = []
    for s in range(n_subjects):
        image, labels, spacing = ring_study(n_frames=2, n_slices=3, seed=seed + s)
        for t, phase in enumerate(("ED", "ES")):
            volumes.append(LabelledVolume(f"s{s}", "Synthetic", phase, ImageData(image[t], Geometry(spacing)), labels[t]))
    return volumes


@pytest.fixture(scope="module")
def trained(tmp_path_factory, torch_threads):
    out = tmp_path_factory.mktemp("unet")
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=64, batch=4, epochs=3, steps_per_epoch=25, lr=5e-3, val_subjects=1)
    first = train_unet(ring_volumes(4), config, out, progress=False, log=lambda *_: None, stop_after_epoch=2)
    messages = []
    result = train_unet(ring_volumes(4), config, out, progress=False, log=messages.append)
    return out, config, {**result, "first": first, "messages": messages}


def test_training_learns_the_rings(trained):
    out, _, result = trained
    assert result["best_val_dice"] > 0.7
    model = load_lvunet(out / "best.safetensors")
    image, labels, spacing = ring_study(n_frames=1, n_slices=3, seed=99)
    scores = dice_per_structure(segment(image[0], spacing, model).labels, labels[0])
    assert scores["blood_pool"] > 0.75 and scores["myocardium"] > 0.5


def test_training_resumes_where_it_stopped(trained):
    out, _, result = trained
    assert [h["epoch"] for h in result["first"]["history"]] == [1, 2]
    assert any("resuming after epoch 2" in m for m in result["messages"])
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert load_lvunet(out / "last.safetensors").metadata["epoch"] == 3


def test_validation_subjects_are_never_trained_on(trained):
    out, _, result = trained
    metadata = load_lvunet(out / "best.safetensors").metadata
    assert metadata["validation_subjects"] == result["validation_subjects"] and len(result["validation_subjects"]) == 1


def test_fine_tuning_refuses_a_split_that_validates_on_subjects_the_weights_saw(trained, tmp_path):
    out, config, result = trained
    start = str(out / "last.safetensors")
    other_seed = next(seed for seed in range(1, 50)
                      if split_subjects([f"s{s}" for s in range(4)], 1, seed)[1] != result["validation_subjects"])
    with pytest.raises(InputError, match="validation would be contaminated"):
        train_unet(ring_volumes(4), replace(config, init_from=start, seed=other_seed, epochs=1, steps_per_epoch=1),
                   tmp_path / "leaky", progress=False, log=lambda *_: None)
    assert not (tmp_path / "leaky" / "last.safetensors").exists()
    # the first run's split is accepted
    same = train_unet(ring_volumes(4), replace(config, init_from=start, epochs=1, steps_per_epoch=1), tmp_path / "same",
                      progress=False, log=lambda *_: None)
    assert same["validation_subjects"] == result["validation_subjects"]


def test_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path, torch_threads):
    """Stopping mid-epoch and resuming gives bit-identical weights to one uninterrupted run."""
    import torch

    from unetgan.training.appearance import TargetHistograms, quantile_function_of

    volumes = ring_volumes(3)
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=48, batch=2, epochs=2, steps_per_epoch=6, lr=5e-3,
                             val_subjects=1, method="robust", gin=0.5, target_histograms=0.5)
    darker = TargetHistograms(np.stack([quantile_function_of(np.linspace(0, 1, 500) ** 2)]))
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    train_unet(volumes, config, straight, progress=False, log=lambda *_: None, target_histograms=darker)
    first = train_unet(volumes, config, pieces, progress=False, log=lambda *_: None, stop_after_step=4,
                       target_histograms=darker)
    assert first["step"] == 4 and first["history"] == []
    messages = []
    train_unet(volumes, config, pieces, progress=False, log=messages.append, target_histograms=darker)
    assert any("resuming after epoch 0, step 4 of 12" in m for m in messages)
    a = torch.load(straight / "training_state.pt", weights_only=True)
    b = torch.load(pieces / "training_state.pt", weights_only=True)
    assert a["step"] == b["step"] == 12
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    log = [json.loads(line) for line in (pieces / "run_log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log].count("resume") == 1
    assert log[-1]["cpu_seconds"] >= log[0]["cpu_seconds"] > 0


def test_weight_averaging_is_the_mean_of_the_sampled_weights_and_resumes_exactly(tmp_path, torch_threads):
    """--average-every: average.safetensors holds the mean of the weights at every N-th step (its BatchNorm
    statistics re-measured), and a run resumed mid-epoch ends with the same average as an uninterrupted one."""
    import torch

    from unetgan.weights import read_weights

    volumes = ring_volumes(3)
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=48, batch=2, epochs=2, steps_per_epoch=4, lr=5e-3,
                             val_subjects=1, schedule="constant", average_every=2, average_bn_batches=2)
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    result = train_unet(volumes, config, straight, progress=False, log=lambda *_: None)
    assert [e["averaged_weights"] for e in result["history"]] == [2, 4]
    assert all(np.isfinite(e["average_val_dice"]) for e in result["history"])
    # the mean of the weights after steps 2, 4, 6 and 8, replayed from the per-step checkpoints of a second run
    sampled = []
    for stop in (2, 4, 6, 8):
        train_unet(volumes, config, pieces, progress=False, log=lambda *_: None, stop_after_step=stop)
        state = torch.load(pieces / "training_state.pt", weights_only=True)
        sampled.append(state["model"])
    averaged, metadata = read_weights(straight / "average.safetensors")
    assert metadata["averaged_weights"] == 4
    last, _ = read_weights(straight / "last.safetensors")
    name = "stem.0.weight"
    assert name in averaged
    expected = torch.stack([s[name] for s in sampled]).mean(0)
    assert torch.allclose(averaged[name], expected, atol=1e-6)
    assert not torch.allclose(averaged[name], last[name], atol=1e-4)  # an average, not the last weights
    assert not torch.equal(averaged["stem.1.running_mean"], last["stem.1.running_mean"])  # re-measured
    # resumed in pieces (stops at 2, 4, 6, 8 above): the same average as the uninterrupted run
    a = torch.load(straight / "training_state.pt", weights_only=True)["average"]
    b = torch.load(pieces / "training_state.pt", weights_only=True)["average"]
    for key, tensor in a.items():
        assert torch.equal(tensor, b[key]), key


def test_resuming_an_unaveraged_run_with_averaging_is_refused(tmp_path, torch_threads):
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=48, batch=2, epochs=1, steps_per_epoch=2, val_subjects=1)
    train_unet(ring_volumes(3), config, tmp_path, progress=False, log=lambda *_: None, stop_after_step=1)
    with pytest.raises(InputError, match="without weight averaging"):
        train_unet(ring_volumes(3), replace(config, average_every=1), tmp_path, progress=False, log=lambda *_: None)


def test_tta_distillation_moves_the_student_toward_the_teachers_flip_averaged_output(tmp_path, torch_threads):
    """--distill-from: trained with the distillation term, the student's one-pass probabilities are closer to
    the teacher's four-flip average than those of the same run without it."""
    import torch
    import torch.nn.functional as F

    from unetgan.networks.lvunet import load_lvunet_file, with_tta
    from unetgan.training.datasets import slices_of
    from unetgan.weights import read_weights

    volumes = ring_volumes(3)
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=48, batch=4, epochs=1, steps_per_epoch=20, lr=5e-3,
                             val_subjects=1, seed=1)
    train_unet(volumes, config, tmp_path / "teacher", progress=False, log=lambda *_: None)
    teacher_file = str(tmp_path / "teacher" / "last.safetensors")
    for name, weight in (("plain", 0.0), ("distilled", 20.0)):
        student = replace(config, steps_per_epoch=15, init_from=teacher_file, distill_from=teacher_file,
                          distill_weight=weight)
        train_unet(volumes, student, tmp_path / name, progress=False, log=lambda *_: None)

    x = slices_of(volumes).images[::3]
    with torch.no_grad():
        target = torch.softmax(with_tta(load_lvunet_file(teacher_file), "flip4")(x), 1)

        def divergence(folder):
            return float(F.kl_div(F.log_softmax(load_lvunet_file(tmp_path / folder / "last.safetensors")(x), 1), target,
                                  reduction="batchmean"))

        plain, distilled = divergence("plain"), divergence("distilled")
    assert distilled < 0.7 * plain, (plain, distilled)
    assert read_weights(tmp_path / "distilled" / "last.safetensors")[1]["train_config"]["distill_from"] == teacher_file


def test_target_histogram_augmentation_maps_onto_the_target_distribution():
    from unetgan.training.appearance import TargetHistograms, quantile_function_of

    rng = np.random.default_rng(0)
    source = rng.random((64, 64)).astype(np.float32)
    target_values = rng.random(4096) ** 3  # a darker target vendor
    histograms = TargetHistograms(np.stack([quantile_function_of(target_values)]))
    matched = histograms.match(source, quantile_function_of(source), rng)
    assert abs(np.median(matched) - np.median(target_values)) < 0.02
    assert np.array_equal(np.argsort(matched, axis=None), np.argsort(source, axis=None))  # order (anatomy) kept


def test_rematching_restores_the_original_histogram_and_keeps_the_augmented_order():
    import torch

    from unetgan.training.appearance import match_histogram_of, quantile_function_of, random_intensity_network

    original = torch.rand(1, 64, 64) ** 2
    augmented = random_intensity_network(original, torch.Generator().manual_seed(1))
    matched = match_histogram_of(augmented, original)
    assert np.abs(quantile_function_of(augmented.numpy()) - quantile_function_of(original.numpy())).max() > 0.05
    assert np.abs(quantile_function_of(matched.numpy()) - quantile_function_of(original.numpy())).max() < 1e-3
    order = np.argsort(augmented.numpy(), axis=None, kind="stable")  # what GIN made brighter stays brighter
    assert np.all(np.diff(matched.numpy().ravel()[order]) >= -1e-6)


def test_the_sampler_rematches_gin_samples_onto_the_source_distribution():
    import torch

    from unetgan.training.appearance import quantile_function_of
    from unetgan.training.datasets import SliceSet
    from unetgan.training.train_unet import CropSampler

    # every slice uniform noise: any crop's quantile function is the identity, whatever GIN makes of it
    images = torch.rand(6, 1, 96, 96, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(6, 96, 96, dtype=torch.int64)
    labels[:, 40:56, 40:56] = 1
    data = SliceSet(images, labels, [f"s{i}" for i in range(6)])
    identity = np.linspace(0, 1, 257)

    def worst_deviation(rematch: float) -> float:
        config = UnetTrainConfig(crop=64, batch=8, gin=1.0, rematch=rematch, method="noisy")
        batch, _ = CropSampler(data, config).batch_tensors(0)
        return max(np.abs(quantile_function_of(b.numpy()) - identity).max() for b in batch)

    # the noisy recipe's noise and affine padding stay after rematching, GIN's changes do not
    assert worst_deviation(0.0) > 0.2 and worst_deviation(1.0) < 0.1


def test_random_intensity_network_keeps_range_and_is_seeded():
    import torch

    from unetgan.training.appearance import random_intensity_network

    image = torch.rand(1, 32, 32)
    a = random_intensity_network(image, torch.Generator().manual_seed(3))
    b = random_intensity_network(image, torch.Generator().manual_seed(3))
    c = random_intensity_network(image, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == image.shape and float(a.min()) >= float(image.min()) - 1e-5 and float(a.max()) <= float(image.max()) + 1e-5


def test_self_training_keeps_plausible_pseudo_labels_and_trains_on_them(trained, tmp_path):
    """Pseudo-labels from the trained ring model: good volumes kept with correct masks, noise dropped with
    a reason; the kept ones join training (never validation)."""
    from unetgan.io.images import write_image
    from unetgan.training.datasets import labelled_volumes
    from unetgan.training.pseudo_labels import pseudo_label

    out, config, _ = trained
    rows, truth = ["subject,vendor,phase,image,label,split"], {}
    for s in range(2):
        image, labels, spacing = ring_study(n_frames=1, n_slices=3, seed=40 + s)
        write_image(image[0], Geometry(spacing), tmp_path / f"t{s}.nii.gz")
        rows.append(f"t{s},Target,ED,t{s}.nii.gz,,train_unlabelled")
        truth[f"t{s}"] = labels[0]
    noise = np.random.default_rng(1).normal(100, 30, (3, 80, 80)).astype(np.float32)
    write_image(noise, Geometry((1.8, 1.8, 8.0)), tmp_path / "noise.nii.gz")
    rows.append("noise,Target,ED,noise.nii.gz,,train_unlabelled")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")

    summary = pseudo_label(tmp_path / "m.csv", "Target", ["train_unlabelled"], load_lvunet(out / "best.safetensors"), None,
                           tmp_path / "pseudo", progress=False, min_confidence=0.8)
    kept = {v["subject"]: v for v in summary["volumes"]}
    assert not kept["noise"]["kept"] and kept["noise"]["reasons"]
    assert kept["t0"]["kept"] and kept["t1"]["kept"], summary["volumes"]
    pseudo = labelled_volumes(tmp_path / "pseudo" / "manifest.csv", progress=False)
    assert [v.subject for v in pseudo] == ["t0", "t1"] and all(v.vendor == "Target" for v in pseudo)
    for volume in pseudo:
        assert dice_per_structure(volume.labels, truth[volume.subject])["mean"] > 0.8

    messages = []
    fine_tune = UnetTrainConfig(widths=(8, 8, 16, 16), crop=64, batch=4, epochs=1, steps_per_epoch=3, lr=1e-3, val_subjects=1,
                                init_from=str(out / "best.safetensors"))
    result = train_unet(ring_volumes(4), fine_tune, tmp_path / "st", progress=False, log=messages.append,
                        pseudo_volumes=pseudo)
    assert any("self-training: 2 pseudo-labelled volumes" in m for m in messages)
    assert not set(result["validation_subjects"]) & {"t0", "t1"}
    assert result["history"][0]["val_dice"] > 0.7  # started from the trained weights, not from scratch


def test_a_soup_is_the_weighted_mean_of_its_ingredients_written_reproducibly(tmp_path):
    """scripts/recipes/soup_lvunet.py (how the default segmenter, lvunet-soup, was made): `A:3 B:1` is 0.75 A + 0.25 B
    in every floating-point tensor, BatchNorm statistics included, the first's batch counters; the same mix
    written twice is the same file, byte for byte (its SHA256 is what the registry records)."""
    import subprocess
    import sys

    import torch

    from conftest import MODULE_DIR
    from unetgan.networks.lvunet import LVUnet, LVUnetConfig, load_lvunet_file
    from unetgan.weights import read_weights, sha256_of, write_weights

    files = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        network = LVUnet(LVUnetConfig(widths=(4, 8, 8, 8)))
        for module in network.modules():  # distinct BatchNorm statistics, so that they are mixed too
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
        files.append(tmp_path / f"ingredient{seed}.safetensors")
        write_weights(network, files[-1], {"config": {"widths": [4, 8, 8, 8]}, "architecture": "LVUnet",
                                           "validation_subjects": ["s0"], "val_dice": 0.5, "step": seed})
    outputs = [tmp_path / "soup1.safetensors", tmp_path / "soup2.safetensors"]
    for out in outputs:
        done = subprocess.run([sys.executable, str(MODULE_DIR.parent / "scripts" / "recipes" / "soup_lvunet.py"), f"{files[0]}:3",
                               f"{files[1]}:1", "-o", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert sha256_of(outputs[0]) == sha256_of(outputs[1])
    (a, _), (b, _), (mix, metadata) = read_weights(files[0]), read_weights(files[1]), read_weights(outputs[0])
    for key, tensor in mix.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, 0.75 * a[key] + 0.25 * b[key], atol=1e-6), key
        else:
            assert torch.equal(tensor, a[key]), key
    assert not torch.allclose(mix["stem.1.running_mean"], a["stem.1.running_mean"])
    assert "0.75 x" in metadata["soup"] and "step" not in metadata and "val_dice" not in metadata
    assert isinstance(load_lvunet_file(outputs[0]), LVUnet)
    refused = subprocess.run([sys.executable, str(MODULE_DIR.parent / "scripts" / "recipes" / "soup_lvunet.py"), f"{files[0]}:0",
                              str(files[1]), "-o", str(tmp_path / "bad.safetensors")], capture_output=True, text=True)
    assert refused.returncode != 0 and "must be positive" in refused.stderr


def test_the_same_weights_written_twice_are_the_same_bytes(tmp_path):
    """safetensors orders the metadata at random (a Rust HashMap): weights.write_weights sorts it, so a file's
    SHA256 depends only on its tensors and metadata."""
    import torch

    from unetgan.weights import read_weights, sha256_of, write_weights

    network = torch.nn.Linear(3, 2)
    metadata = {name: index for index, name in enumerate("abcdefgh")}
    hashes = {write_weights(network, tmp_path / f"copy{i}.safetensors", metadata) for i in range(5)}
    assert len(hashes) == 1 and hashes == {sha256_of(tmp_path / "copy0.safetensors")}
    assert read_weights(tmp_path / "copy0.safetensors")[1] == metadata


SICK_OPTIONS = dict(phantom_fraction=0.5, phantom_subjects=1, sick_emphasis=2.0, partial_volume=0.5, zoom=0.5,
                    low_resolution=0.5, off_centre=0.5)


def test_sick_heart_and_protocol_options_train_and_resume_exactly_from_the_portable_copy(tmp_path, torch_threads):
    """Every emphasis option on: a run stopped mid-epoch, its run folder lost, resumed from the portable
    (safetensors) copy alone, ends bit-identical to one uninterrupted run; the copy holds no pickle."""
    import torch
    from safetensors import safe_open

    volumes = ring_volumes(3)
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=48, batch=4, epochs=2, steps_per_epoch=4, lr=5e-3,
                             val_subjects=1, method="robust", gin=0.3, **SICK_OPTIONS)
    straight = tmp_path / "straight"
    messages = []
    train_unet(volumes, config, straight, progress=False, log=messages.append)
    assert any("phantom sick hearts: 1 subjects" in m for m in messages)
    assert any(m.startswith("drawn 3x as often") for m in messages)
    assert any(m.startswith("checkpoint at step 8:") and "CPU hours" in m for m in messages)

    portable = tmp_path / "kept"
    exported = replace(config, export_dir=str(portable), export_minutes=0.0)
    first = train_unet(volumes, exported, tmp_path / "lost", progress=False, log=lambda *_: None, stop_after_step=3)
    assert first["step"] == 3
    with safe_open(str(portable / "training_state.safetensors"), "pt") as handle:
        assert json.loads(handle.metadata()["training_state"])["step"] == 3
        assert any(key.startswith("optimiser/") for key in handle.keys())
    messages = []
    train_unet(volumes, exported, tmp_path / "fresh", progress=False, log=messages.append)
    assert any("checkpoint of step 3 taken from" in m for m in messages)
    assert any("resuming after epoch 0, step 3 of 8" in m for m in messages)
    a = torch.load(straight / "training_state.pt", weights_only=True)
    b = torch.load(tmp_path / "fresh" / "training_state.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    log = [json.loads(line) for line in (tmp_path / "fresh" / "run_log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "checkpoint" and log[0]["step"] == 3  # the lost folder's log came with the copy
    assert log[-1]["cpu_seconds"] > log[0]["cpu_seconds"] > 0


def test_unusual_training_volumes_are_drawn_more_often():
    """The subject with the thickest wall (and slices with a tiny cavity) get 1 + emphasis times the weight."""
    from unetgan.training.sick_hearts import emphasis_weights, unusual_subjects

    from scipy import ndimage

    volumes = ring_volumes(5)
    ed = next(v for v in volumes if v.subject == "s4" and v.phase == "ED")
    ed.labels[ndimage.binary_dilation(ed.labels > 0, iterations=6) & (ed.labels == 0)] = 2  # a much thicker wall
    unusual = unusual_subjects(volumes)
    assert unusual["thick_wall"] == ["s4"]
    weights, _ = emphasis_weights(volumes, 2.0)
    per_volume = np.split(weights, np.cumsum([v.labels.shape[0] for v in volumes])[:-1])
    flagged = set().union(*unusual.values())
    for volume, w in zip(volumes, per_volume):
        pool = (volume.labels == 1).sum(axis=(1, 2))
        myo = (volume.labels == 2).sum(axis=(1, 2))
        tiny = (pool > 0) & (pool < 0.25 * (pool + myo))
        expected = np.where(tiny | (volume.subject in flagged), 3.0, 1.0)
        np.testing.assert_allclose(w / weights.min(), expected, rtol=1e-9)


def test_protocol_augmentations_keep_labels_on_the_anatomy():
    import torch

    from unetgan.training import protocol

    image, labels, _ = ring_study(n_frames=1, n_slices=2, size=64, seed=1)
    crop = torch.from_numpy(image[0, :1] / image.max())
    label = torch.from_numpy(labels[0, :1].astype(np.int64))
    rng = np.random.default_rng(0)
    zoomed, zoomed_label = protocol.zoom(crop, label, rng, (1.5, 1.5))
    assert zoomed_label.dtype == label.dtype
    assert int((zoomed_label == 1).sum()) == pytest.approx(1.5 ** 2 * int((label == 1).sum()), rel=0.08)
    assert float(zoomed[zoomed_label == 1].mean()) > 0.8 and float(zoomed[zoomed_label == 0].mean()) < 0.4
    shrunk, shrunk_label = protocol.zoom(crop, label, rng, (0.75, 0.75))
    assert int((shrunk_label == 1).sum()) == pytest.approx(0.75 ** 2 * int((label == 1).sum()), rel=0.08)
    # coarse acquisition removes detail (the noise), never adds any
    coarse = [protocol.low_resolution(crop, np.random.default_rng(s)) for s in range(20)]
    assert any(not torch.equal(c, crop) for c in coarse)
    detail = lambda x: float(torch.diff(x, dim=-1).abs().mean())  # noqa: E731
    assert all(detail(c) <= detail(crop) + 1e-6 for c in coarse)
    assert protocol.neighbour_indices([2, 3]).tolist() == [[0, 1], [0, 1], [2, 3], [2, 4], [3, 4]]
    blended = protocol.partial_volume(crop, torch.zeros_like(crop), np.random.default_rng(0))
    share = float(blended.sum() / crop.sum())
    assert 1 - protocol.PARTIAL_VOLUME_WEIGHT[1] <= share <= 1 - protocol.PARTIAL_VOLUME_WEIGHT[0]
    centre = np.array([40, 40])
    for seed in range(20):
        top = protocol.off_centre_top(centre, 48, np.random.default_rng(seed))
        offset = np.hypot(*(centre - (top + 24)))
        assert 48 / 4 - 1 <= offset <= 48 / 2


def test_phantom_samples_take_the_grey_levels_of_the_real_training_slices(torch_threads):
    """With every sample from the phantom, batch intensities follow the training slices' distribution."""
    from unetgan.training.appearance import quantile_function_of
    from unetgan.training.datasets import slices_of
    from unetgan.training.sick_hearts import phantom_sick_volumes
    from unetgan.training.train_unet import CropSampler

    volumes = ring_volumes(2)
    source = slices_of(volumes)
    phantom = slices_of(list(phantom_sick_volumes(1, 0)))
    config = UnetTrainConfig(crop=64, batch=8, phantom_fraction=1.0)
    images, labels = CropSampler(source, config, phantom=phantom).batch_tensors(0)
    assert labels.max() == 2 and (labels == 1).any()  # phantom hearts with both structures
    median = lambda q: float(q[len(q) // 2])  # noqa: E731
    source_median = np.median([median(quantile_function_of(s)) for s in source.images.numpy()])
    phantom_median = np.median([median(quantile_function_of(s)) for s in phantom.images.numpy()])
    batch_median = np.median([median(quantile_function_of(s)) for s in images.numpy()])
    assert abs(batch_median - source_median) < 0.5 * abs(phantom_median - source_median)


@pytest.mark.parametrize("change, message", [
    (dict(phantom_fraction=1.5), "--phantom-fraction is a probability"),
    (dict(zoom_range=(1.6, 0.75)), "--zoom-range is two factors"),
    (dict(sick_emphasis=-1.0), "--sick-emphasis must be 0 or more"),
])
def test_emphasis_settings_that_mean_nothing_are_refused(tmp_path, change, message):
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=48, batch=2, epochs=1, steps_per_epoch=1, val_subjects=1,
                             **change)
    with pytest.raises(InputError, match=message):
        train_unet(ring_volumes(2), config, tmp_path, progress=False, log=lambda *_: None)
    assert not (tmp_path / "training_state.pt").exists()


def test_translated_source_samples_are_the_target_generators_rendering_with_their_labels(tmp_path, torch_threads):
    """Image-level adaptation: with every source sample translated by a source -> target generator, the images are
    that generator's output (here one that renders everything mid-grey) and the labels stay the anatomy's; the
    option without a generator is refused."""
    import torch

    from unetgan.networks.generator import GeneratorConfig, build_generator, save_generator
    from unetgan.training.datasets import slices_of
    from unetgan.training.train_unet import CropSampler

    generator = build_generator(GeneratorConfig(filters=4, n_blocks=1))
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.zero_()  # output tanh(0) = 0 everywhere: mid-grey once mapped back to [0, 1]
    path = tmp_path / "g_t.safetensors"
    save_generator(generator, path, direction="source_to_target")
    source = slices_of(ring_volumes(2))
    config = UnetTrainConfig(crop=64, batch=8, method="noisy")
    plain_images, _ = CropSampler(source, config).batch_tensors(0)
    images, labels = CropSampler(source, replace(config, translated_source=1.0, source_translator=str(path))).batch_tensors(0)
    assert (labels == 1).any() and (labels == 2).any()
    medians = [float(image.median()) for image in images]  # the noisy recipe adds noise after the translation
    assert all(abs(m - 0.5) < 0.05 for m in medians), medians
    assert not any(abs(float(image.median()) - 0.5) < 0.05 for image in plain_images)
    with pytest.raises(InputError, match="--translated-source needs --source-translator"):
        CropSampler(source, replace(config, translated_source=0.5))
