"""Clinical numbers from labelmaps and the Dice/EF evaluation helpers."""
from __future__ import annotations

import numpy as np
import pytest

from unetgan.evaluation import dice, dice_per_structure, ef_agreement
from unetgan.measurements import cine_measurements, frame_measurements


def test_frame_volumes_and_mass():
    labels = np.zeros((2, 10, 10), np.uint8)
    labels[0, :5, :] = 1  # 50 voxels
    labels[1, :2, :] = 2  # 20 voxels
    m = frame_measurements(labels, voxel_volume_ml=0.5)
    assert m == {"blood_pool_ml": 25.0, "myocardium_ml": 10.0, "myocardial_mass_g": 10.5}


def test_cine_ed_es_and_ejection_fraction(ring):
    _, labels, spacing = ring
    voxel_ml = np.prod(spacing) / 1000
    m = cine_measurements(labels, voxel_ml)
    volumes = [(f == 1).sum() * voxel_ml for f in labels]
    assert m["ed_frame"] == int(np.argmax(volumes)) and m["es_frame"] == int(np.argmin(volumes))
    assert m["edv_ml"] == pytest.approx(max(volumes), abs=0.01)
    assert m["ef_percent"] == pytest.approx(100 * (max(volumes) - min(volumes)) / max(volumes), abs=0.1)
    assert 20 < m["ef_percent"] < 80
    assert m["sv_ml"] == pytest.approx(m["edv_ml"] - m["esv_ml"], abs=0.02)


def test_single_volume_has_no_ef(ring):
    m = cine_measurements(ring[1][0], 0.01)
    assert m["ef_percent"] is None and len(m["frames"]) == 1


def test_dice_values():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2] = True
    b[1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a & False, b & False) == 1.0


def test_dice_only_on_labelled_slices():
    reference = np.zeros((3, 5, 5), np.uint8)
    reference[:, 1:4, 1:4] = 1
    prediction = reference.copy()
    prediction[2] = 0  # a slice the expert did not contour must not count
    valid = {"blood_pool": np.array([True, True, False]), "myocardium": np.zeros(3, bool)}
    scores = dice_per_structure(prediction, reference, valid)
    # no myocardium label at all: the mean of both structures is undefined, not the blood pool alone
    assert scores["blood_pool"] == 1.0 and np.isnan(scores["myocardium"]) and np.isnan(scores["mean"])


def test_ef_agreement_pairs_ed_and_es():
    rows = []
    for subject, (ref, pred) in enumerate([((100, 40), (100, 40)), ((100, 50), (90, 50)), ((80, 20), (80, 30))]):
        for phase, r, p in (("ED", ref[0], pred[0]), ("ES", ref[1], pred[1])):
            rows.append({"subject": str(subject), "phase": phase, "reference_blood_pool_voxels": r, "predicted_blood_pool_voxels": p})
    result = ef_agreement(rows)
    assert result["n_subjects"] == 3
    # EFs: reference 60, 50, 75; predicted 60, 44.4, 62.5
    assert result["mae"] == pytest.approx((0 + 5.556 + 12.5) / 3, abs=0.01)
    assert 0.8 < result["pearson_r"] <= 1.0


def test_masks_over_featureless_tissue_are_flagged_by_the_contrast_check(ring):
    from unetgan.quality import blood_to_myocardium, study_warnings

    image, labels, spacing = ring
    bright_blood = np.where(labels[0] == 1, 300.0, np.where(labels[0] == 2, 100.0, 50.0))
    flat = np.full(labels[0].shape, 120.0)
    assert blood_to_myocardium(bright_blood, labels[0]) == pytest.approx(3.0)
    voxel_ml = float(np.prod(spacing)) / 1000
    assert not any("brighter" in w for w in study_warnings(labels[0], [0.99], voxel_ml, bright_blood))
    warnings = study_warnings(labels[0], [0.99], voxel_ml, flat)
    assert any("not brighter than the myocardium under the masks (ratio 1.00)" in w for w in warnings), warnings
    assert blood_to_myocardium(flat, np.zeros_like(labels[0])) is None  # nothing to compare: no warning either
