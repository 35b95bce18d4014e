"""The vendor classifier that judges translations: it tells two looks apart, and a look it was not
trained to reject passes for the source. The texture classifier sees every image histogram-matched to
the source reference, so grey levels alone do not tell vendors apart; the report shows both classifiers
and checks the shipped adapter against the accuracy goals."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ring_study
from unetgan.histogram import QUANTILES, reference_from
from unetgan.preprocess import prepare_volume
from unetgan.vendor_check import _random_crops, balanced_accuracy, source_look_rate, train_vendor_classifier

SCRIPT = Path(__file__).resolve().parent.parent / "research" / "analyses" / "vendor_check.py"
SPACING = (1.2, 1.2, 8.0)  # 120 px at 1.2 mm fill 96 of the 192 px grid: the rest is padding


def analysis():
    """research/analyses/vendor_check.py as a module (research/ is not a package)."""
    spec = importlib.util.spec_from_file_location("vendor_check_analysis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speckled(image: np.ndarray, seed: int) -> np.ndarray:
    """Coarse speckle and a gamma, as another vendor's look might have."""
    rng = np.random.default_rng(seed)
    speckle = np.kron(rng.normal(0, 40, image.shape[:2] + (30, 30)), np.ones((1, 1, 4, 4))).astype(np.float32)
    return np.clip(image + speckle, 0, None) ** 1.3


def volumes(seed: int, look: str) -> list:
    """(array, spacing) per frame of ring cines, in the source look, the speckled 'target' look, or the source
    look with other grey levels only ('grey': a monotonic change of intensities, the same texture)."""
    out = []
    for s in range(3):
        image, _, spacing = ring_study(n_frames=2, n_slices=4, size=120, spacing=SPACING, seed=seed + s)
        if look == "target":
            image = speckled(image, seed + 100 + s)
        elif look == "grey":
            image = (image + 30.0) ** 2.5
        out += [(frame, spacing) for frame in image]
    return out


def slices(seed: int, look: str) -> torch.Tensor:
    return torch.cat([prepare_volume(frame, spacing)[0] for frame, spacing in volumes(seed, look)])


@pytest.fixture(scope="module")
def trained():
    """A classifier trained on the source vs the target look, with its training slices (two tests share it)."""
    torch.set_num_threads(1)
    source, target = slices(0, "source"), slices(0, "target")
    return train_vendor_classifier(source, target, steps=120, batch=16, seed=0), source, target


def test_the_classifier_tells_the_looks_apart_and_passes_the_source_look(trained):
    classifier = trained[0]
    held_out_source, held_out_target = slices(50, "source"), slices(50, "target")
    assert balanced_accuracy(classifier, held_out_source, held_out_target) > 0.9
    # a perfect translation: target anatomy shown in the source look
    translated = slices(80, "source")
    assert source_look_rate(classifier, translated) > 0.8
    assert abs(balanced_accuracy(classifier, held_out_source, translated) - 0.5) < 0.15


def test_judging_uses_the_training_crops_batch_norm_statistics_not_the_last_batches(trained):
    """The classifier judges in eval mode, with BatchNorm's running statistics: they must be those of the
    balanced training crops as a whole (a moving average of the last batches is noisy enough to flip the
    verdicts of a classifier whose cue is subtle)."""
    classifier, source, target = trained
    rng = np.random.default_rng(123)
    crops = torch.cat([_random_crops(source, 1000, rng), _random_crops(target, 1000, rng)])
    with torch.no_grad():
        features = classifier.features[0](crops)
    norm = classifier.features[1]
    mean, var = features.mean(dim=(0, 2, 3)), features.var(dim=(0, 2, 3))
    assert float(((norm.running_mean - mean).abs() / var.sqrt()).max()) < 0.005
    assert float(((norm.running_var - var).abs() / var).max()) < 0.01


def reference() -> np.ndarray:
    return reference_from([frame for frame, _ in volumes(200, "source")])


def test_the_texture_view_is_histogram_matched_and_blind_to_grey_levels(torch_threads):
    module, ref = analysis(), reference()
    source, grey = (module.views(volumes(7, look), module.plain_slices, ref) for look in ("source", "grey"))
    frame, spacing = volumes(7, "source")[0]
    mask = module.content_mask(frame.shape, spacing).expand_as(source.texture)
    assert 0 < mask.sum() < mask.numel()
    assert (source.raw - grey.raw)[mask].abs().mean() > 0.05  # the raw view shows the other grey levels
    assert (source.texture - grey.texture)[mask].abs().mean() < 0.01  # the texture view does not
    assert np.abs(np.quantile(source.texture[mask].numpy(), QUANTILES) - ref).max() < 0.01
    assert np.abs(np.quantile(grey.texture[mask].numpy(), QUANTILES) - ref).max() < 0.01
    assert float(source.texture[~mask].abs().max()) == 0.0  # padding is not matched into grey


def test_the_texture_classifier_sees_texture_not_grey_levels(torch_threads):
    module, ref = analysis(), reference()
    train = {look: module.views(volumes(0, look), module.plain_slices, ref) for look in ("source", "target")}
    classifier = train_vendor_classifier(train["source"].texture, train["target"].texture, steps=120, batch=16, seed=0)
    held_out = {look: module.views(volumes(50, look), module.plain_slices, ref) for look in ("source", "target", "grey")}
    assert balanced_accuracy(classifier, held_out["source"].texture, held_out["target"].texture) > 0.9
    # other grey levels with the source texture pass for the source
    assert source_look_rate(classifier, held_out["grey"].texture) > 0.8


def synthetic_report(module) -> dict:
    def row(raw, texture):
        return {"n_slices": 10, "balanced_accuracy": 0.5, "source_look_rate": raw,
                "texture_balanced_accuracy": 0.7, "texture_source_look_rate": texture}

    rows = {"no translation": row(0.0, 0.1), "adapter-x (0123abcd)": row(0.65, 0.25), "adapter-x-long (89abcdef)": row(0.9, 0.9),
            module.REAL_PHILIPS: {"n_slices": 8, "source_look_rate": 0.95, "texture_source_look_rate": 0.85}}
    report = {"command": "python research/analyses/vendor_check.py --steps 600", "vendors": {"Siemens": rows}, "goals": {}}
    report["goals"]["Siemens"] = module.goal_checks(rows, module.shipped_row(rows, "adapter-x"))
    return report


def test_the_goals_are_checked_on_the_shipped_adapters_figures():
    module = analysis()
    goals = synthetic_report(module)["goals"]["Siemens"]
    assert goals["adapter"] == "adapter-x (0123abcd)"  # not adapter-x-long, whose name starts the same
    met = {name: check["met"] for name, check in goals["checks"].items()}
    assert met == {"translations, raw classifier": True, "translations, texture classifier": False,
                   "real Philips, raw classifier": True, "real Philips, texture classifier": False}
    assert goals["checks"]["translations, texture classifier"]["taken_for_philips"] == 0.25


def test_the_page_shows_both_classifiers_and_the_goal_lines():
    module = analysis()
    page = module.markdown(synthetic_report(module))
    assert "python research/analyses/vendor_check.py --steps 600" in page
    header = next(line for line in page.splitlines() if line.startswith("| images"))
    assert "raw classifier: balanced accuracy" in header and "texture classifier: balanced accuracy" in header
    assert "| adapter-x (0123abcd) | 0.500 | 0.650 | 0.700 | 0.250 | 10 |" in page
    assert f"| {module.REAL_PHILIPS} | - | 0.950 | - | 0.850 | 8 |" in page
    goal_line = next(line for line in page.splitlines() if line.startswith("Goals for the shipped adapter"))
    assert "adapter-x (0123abcd)" in goal_line
    assert "translations, raw classifier 65.0% (goal 60%): **met**" in goal_line
    assert "translations, texture classifier 25.0% (goal 30%): **not met**" in goal_line
    assert "real Philips, texture classifier 85.0% (goal 90%): **not met**" in goal_line
