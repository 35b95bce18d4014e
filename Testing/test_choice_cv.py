"""scripts/choice_cv.py: the nested leave-one-subject-out choice scores each subject with the candidate chosen
on the others, vendors weigh alike, ties keep the shipped choice, and the page renders from the JSON alone."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_script

choice_cv = load_script("choice_cv")
report = load_script("choice_cv_report")


def test_vendors_weigh_alike_whatever_their_subject_count():
    scores = {"Philips a": 0.9, "Philips b": 0.9, "Philips c": 0.9, "GE x": 0.6}
    assert choice_cv.balanced(scores, scores) == pytest.approx(0.75)  # not (3 * 0.9 + 0.6) / 4


def test_a_candidate_that_wins_only_on_one_subject_is_never_credited_with_it():
    """'lucky' is best on subject s3 alone by a wide margin; on every other subject 'steady' is better. Chosen on
    all subjects, lucky wins; nested, s3 is scored with the candidate chosen on the others (steady), so the
    estimate is below lucky's in-sample figure: the optimism of choosing on the same subjects is removed."""
    subjects = [f"Philips s{i}" for i in range(6)]
    steady = {k: 0.85 for k in subjects}
    lucky = {k: 0.84 for k in subjects} | {"Philips s3": 0.99}
    result = choice_cv.choice({"steady": steady, "lucky": lucky}, "steady")
    assert result["chosen_on_all"] == "lucky"
    assert result["nested"]["per_subject"]["Philips s3"] == {"chosen": "steady", "score": 0.85}
    assert result["nested"]["times_chosen"] == {"steady": 1, "lucky": 5}
    assert result["nested"]["balanced_mean"] == pytest.approx((5 * 0.84 + 0.85) / 6)
    assert result["nested"]["balanced_mean"] < result["candidates"]["lucky"]["balanced_mean"]
    difference = result["candidates"]["lucky"]["difference_from_shipped"]
    assert (difference["subjects_better"], difference["subjects_worse"]) == (1, 5)
    assert difference["mean"] == pytest.approx(np.mean([-0.01] * 5 + [0.14]))


def test_a_tie_keeps_the_shipped_choice():
    subjects = {f"Siemens s{i}": 0.8 for i in range(4)}
    result = choice_cv.choice({"shipped": dict(subjects), "other": dict(subjects)}, "shipped")
    assert result["chosen_on_all"] == "shipped"
    assert result["nested"]["times_chosen"] == {"shipped": 4, "other": 0}


def test_the_page_shows_every_candidate_and_the_nested_estimate(tmp_path):
    subjects = [f"{v} s{i}" for v in ("Philips", "Siemens", "GE") for i in range(3)]
    rng = np.random.default_rng(0)
    entry = choice_cv.choice({name: {k: float(rng.uniform(0.7, 0.9)) for k in subjects}
                              for name in ("model-a", "model-b")}, "model-a")
    result = {"segmenter": entry, "tta": entry, "end_slice_thresholds": entry,
              "adapter": {"Siemens": entry, "GE": entry | {"scored_held_out": ["model-b"]}},
              "provenance": {"command": "python scripts/choice_cv.py", "runtime": "onnx",
                             "cpu": {"model": "Some CPU", "instruction_set": "avx2"}, "seconds": 12.0}}
    page = tmp_path / "choice_cv.md"
    report.write_markdown(result, page)
    text = page.read_text()
    assert "Some CPU (avx2)" in text and "**model-a**" in text and "| model-b |" in text
    assert f"**{entry['nested']['balanced_mean']:.3f}**" in text
    assert text.count("## ") == 5
    assert text.count("variant trained without that subject's images: `model-b`.") == 1  # GE only


def test_the_image_level_share_is_taken_subject_by_subject_per_vendor():
    image_level = load_script("image_level")
    treated = {"Siemens a": 0.90, "Siemens b": 0.80, "GE x": 0.70}
    control = {"Siemens a": 0.88, "Siemens b": 0.83, "GE x": 0.70}
    share = image_level.paired(treated, control)
    assert share["Siemens"]["mean"] == pytest.approx(-0.005)
    assert share["Siemens"]["sd"] == pytest.approx(np.std([0.02, -0.03], ddof=1))
    assert (share["Siemens"]["subjects_better"], share["Siemens"]["n"]) == (1, 2)
    assert share["GE"] == {"mean": 0.0, "sd": 0.0, "subjects_better": 0, "n": 1}


def test_the_translation_share_is_what_the_adapter_adds_to_histogram_matching_on_the_same_subjects():
    subjects = [f"Siemens s{i}" for i in range(4)]
    adapter = dict(zip(subjects, (0.80, 0.82, 0.84, 0.86)))
    histogram = dict(zip(subjects, (0.79, 0.82, 0.83, 0.87)))
    result = choice_cv.choice({"adapter-x": adapter, "histogram matching only": histogram}, "adapter-x")
    assert choice_cv.translation_share(result) == pytest.approx((0.01 + 0.0 + 0.01 - 0.01) / 4)
    assert choice_cv.translation_share(choice_cv.choice({"adapter-x": histogram, "histogram matching only": histogram},
                                                        "adapter-x")) == 0


def test_a_trained_adapter_is_scored_by_its_variants_that_never_saw_the_subject():
    """An adapter trained on the dev subjects' unlabelled images is scored on each subject by its variant trained
    without that subject, when one is registered for every subject; an identity adapter saw no images, and an
    adapter missing a variant keeps its own scores (scored_held_out says which were held out)."""
    from unetgan.registry import ModelEntry

    def entry(name, identity=False):
        return ModelEntry(name=name, kind="adapter", file=None, sha256=None, identity=identity)

    subjects = ["S1", "S2"]
    registered = {e.name: e for e in (entry("texture"), entry("texture-without-S1"), entry("texture-without-S2"),
                                       entry("plain"), entry("plain-without-S1"),
                                       entry("identity", True), entry("identity-without-S1"), entry("identity-without-S2"))}
    assert choice_cv.held_out_variants(registered["texture"], subjects, registered) == {
        "S1": "texture-without-S1", "S2": "texture-without-S2"}
    assert choice_cv.held_out_variants(registered["plain"], subjects, registered) is None
    assert choice_cv.held_out_variants(registered["identity"], subjects, registered) is None
