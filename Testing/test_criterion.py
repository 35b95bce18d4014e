"""The label-free checkpoint criterion ranks translations as their (hidden) Dice does, on phantom hearts."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from unetgan.evaluation import dice_per_structure
from unetgan.phantom import make_study
from unetgan.preprocess import prepare_labels, prepare_volume
from unetgan.registry import load_lvunet
from unetgan.criterion import foreground_area, label_free_criterion


def network_slices(vendor: str, seed: int):
    study = make_study(vendor, seed=seed, n_phases=2, n_slices=5)
    slices, grid = prepare_volume(study.image[0], study.spacing)
    return slices, prepare_labels(study.labels[0], grid)


def washed_out(slices: torch.Tensor) -> torch.Tensor:
    """A failed translation: blurred and low in contrast, as an undertrained or collapsing generator gives."""
    kernel = torch.ones(1, 1, 7, 7) / 49
    return (0.35 + 0.3 * F.conv2d(slices, kernel, padding=3)).clamp(0, 1)


def test_the_criterion_prefers_the_translation_with_the_better_dice(torch_threads):
    lvunet = load_lvunet("lvunet-clean")  # a fixed LV-Unet: the ranking is the criterion's, not the default model's
    reference_area = foreground_area(lvunet, torch.cat([network_slices("Philips", s)[0] for s in (11, 12)]))
    perfect, labels = network_slices("Philips", 5)  # the Siemens heart of seed 5 as Philips shows it
    siemens, _ = network_slices("Siemens", 5)
    candidates = {"perfect": perfect, "failed": washed_out(siemens)}
    scores = {name: label_free_criterion(lvunet, images, reference_area)["score"] for name, images in candidates.items()}
    with torch.no_grad():
        dice = {name: dice_per_structure(lvunet(images).argmax(1).numpy(), labels.numpy())["mean"]
                for name, images in candidates.items()}
    assert dice["perfect"] > dice["failed"] + 0.1, dice  # the ground truth's ranking
    assert scores["perfect"] > scores["failed"], (scores, dice)
