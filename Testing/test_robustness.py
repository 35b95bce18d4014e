"""scripts/robustness.py: the protocol variants keep the labels' meaning and the shape contract, the off-centre
crop moves the heart, and the dev subjects' grouping rule sorts hearts by their labels."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_script
from unetgan.errors import InputError
from unetgan.phantom import make_study

robustness = load_script("robustness")
report = load_script("robustness_report")


@pytest.fixture(scope="module")
def phantom_frame():
    """The ED frame of a small simulated study: image, exact labels (with the RV, 3), spacing."""
    study = make_study("Siemens", seed=4, n_phases=2, n_slices=8, matrix=96)
    return study.image[study.ed_frame], study.labels[study.ed_frame], study.spacing


def heart_centre(labels):
    return np.array(np.nonzero(np.isin(labels, (1, 2)))[1:]).mean(axis=1)


def test_thicker_slices_mix_neighbours_and_keep_the_grid_and_labels(phantom_frame):
    image, labels, spacing = phantom_frame
    thick, same_labels, same_spacing = robustness.thicker_slices(image, labels, spacing)
    assert thick.shape == image.shape and same_labels is labels and same_spacing == spacing
    z = image.shape[0] // 2
    assert np.allclose(thick[z], 0.25 * image[z - 1] + 0.5 * image[z] + 0.25 * image[z + 1], rtol=1e-5, atol=1e-3)
    assert not np.allclose(thick, image)
    # a spike on one slice spreads a quarter into each neighbour, nothing further
    spike = np.zeros((5, 4, 4), np.float32)
    spike[2] = 4.0
    spread = robustness.thicker_slices(spike, np.zeros(spike.shape, np.uint8), (1.0, 1.0, 1.0))[0][:, 0, 0]
    assert spread.tolist() == [0.0, 1.0, 2.0, 1.0, 0.0]


def test_fewer_slices_halve_the_stack_and_double_the_spacing(phantom_frame):
    image, labels, spacing = phantom_frame
    for transform in (robustness.every_other_slice, robustness.thicker_and_fewer):
        fewer, fewer_labels, fewer_spacing = transform(image, labels, spacing)
        assert fewer.shape == fewer_labels.shape == (4, *image.shape[1:])
        assert fewer_spacing == (spacing[0], spacing[1], 2 * spacing[2])
        assert np.array_equal(fewer_labels, labels[::2])


def test_coarser_pixels_blur_the_image_on_the_stored_grid(phantom_frame):
    image, labels, spacing = phantom_frame
    coarse, same_labels, same_spacing = robustness.coarser_pixels(image, labels, spacing)
    assert coarse.shape == image.shape and same_labels is labels and same_spacing == spacing
    # fine detail (pixel-to-pixel differences) is lost, the grey levels stay
    assert np.abs(np.diff(coarse, axis=2)).mean() < 0.8 * np.abs(np.diff(image, axis=2)).mean()
    assert abs(coarse.mean() - image.mean()) < 0.02 * image.mean()


def test_finer_pixels_resample_image_and_labels_together(phantom_frame):
    image, labels, spacing = phantom_frame
    fine, fine_labels, fine_spacing = robustness.finer_pixels(image, labels, spacing)
    rows, cols = (round(n * robustness.FINER) for n in image.shape[1:])
    assert fine.shape == fine_labels.shape == (image.shape[0], rows, cols)
    assert set(np.unique(fine_labels)) == set(np.unique(labels))  # nearest neighbour: no new label values
    assert fine_spacing == pytest.approx((spacing[0] / 1.4, spacing[1] / 1.4, spacing[2]))
    for value in (1, 2):  # the same structure in mm^2: 1.4^2 times the pixels
        assert (fine_labels == value).sum() / (labels == value).sum() == pytest.approx(1.96, rel=0.08)


def test_off_centre_crop_moves_the_heart_near_a_corner_and_keeps_it_whole(phantom_frame):
    image, labels, spacing = phantom_frame
    cropped, cropped_labels, same_spacing = robustness.off_centre(image, labels, spacing)
    size = round(robustness.CROP_SHARE * image.shape[1]), round(robustness.CROP_SHARE * image.shape[2])
    assert cropped.shape == cropped_labels.shape == (image.shape[0], *size) and same_spacing == spacing
    for value in (1, 2):
        assert (cropped_labels == value).sum() == (labels == value).sum()
    before = np.abs(heart_centre(labels) / np.array(image.shape[1:]) - 0.5)
    after = np.abs(heart_centre(cropped_labels) / np.array(size) - 0.5)
    assert np.all(after > before + 0.1), (before, after)
    with pytest.raises(InputError, match="no labelled heart"):
        robustness.off_centre(image, np.zeros_like(labels), spacing)


def rings(outer_mm: float, wall_mm: float, slices: int = 6, size: int = 160) -> np.ndarray:
    """Labels of a stack of identical short-axis rings: blood pool 1 inside, myocardium 2 around it (1 mm pixels)."""
    y, x = np.mgrid[:size, :size] - size / 2
    radius = np.hypot(x, y)
    ring = np.where(radius < outer_mm - wall_mm, 1, np.where(radius < outer_mm, 2, 0)).astype(np.uint8)
    return np.repeat(ring[None], slices, axis=0)


def test_grouping_rule_sorts_hearts_by_their_expert_labels():
    normal = robustness.group_traits(rings(31, 6), rings(25, 8))  # cavity 50 mm across, walls 6 mm, EF about 64 %
    assert robustness.groups_of(normal) == ["other"]
    assert normal["ed_diameter_mm"] == pytest.approx(50, abs=1) and normal["ed_wall_mm"] == pytest.approx(6, abs=0.5)
    dilated = robustness.group_traits(rings(36, 6), rings(34, 6))  # 60 mm across, barely contracting
    assert robustness.groups_of(dilated) == ["large ED cavity", "reduced EF"]
    thick = robustness.group_traits(rings(30, 10), rings(26, 16))  # 10 mm walls, a tiny ES cavity
    assert robustness.groups_of(thick) == ["thick wall", "small ES cavity"]
    assert thick["expert_ef"] > 70


def test_the_page_states_whether_a_variant_falls_under_the_floor(tmp_path):
    def variant(mean):
        worst = [{"subject": "S1", "vendor": "Siemens", "phase": "ES", "blood_pool": mean, "myocardium": mean, "mean": mean}]
        return {"segment": {"all": {"blood_pool": mean, "myocardium": mean, "mean": mean, "n": 2},
                            "per_vendor": {"Siemens": {"mean": mean}}, "worst": worst}}

    page = tmp_path / "robustness.md"
    report.write_markdown({"dev_variants": {"stored grid": variant(0.9), "every other slice": variant(0.7)}}, page)
    text = page.read_text()
    assert "Lowest variant mean: 0.700 (every other slice, `segment`): **under** 0.75" in text
    assert "| every other slice | 2 | 0.700 | 0.700 | 0.700 | 0.700 | - | - | - | Siemens S1 ES 0.700 |" in text
    report.write_markdown({"dev_variants": {"stored grid": variant(0.9)}}, page)
    assert "no variant's mean is under 0.75" in page.read_text()
