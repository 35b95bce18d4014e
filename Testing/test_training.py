"""LV-Unet training end to end on tiny synthetic volumes: it learns, checkpoints, and resumes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ring_study
from unetgan.inference import segment
from unetgan.evaluation import dice_per_structure
from unetgan.io.images import Geometry, ImageData
from unetgan.io.manifest import LabelledVolume
from unetgan.registry import load_lvunet
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
