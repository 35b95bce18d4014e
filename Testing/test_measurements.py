"""Clinical numbers from labelmaps and the Dice/EF evaluation helpers."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from unetgan.evaluation import dice, dice_per_structure, ef_agreement
from unetgan.measurements import (choose_ed_es, cine_measurements, frame_measurements, measurements_csv,
                                  myocardial_variation_percent, dip_frames, smoothed_curve)


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
    assert m["ed_frame_number"] == int(np.argmax(volumes)) + 1 and m["es_frame_number"] == int(np.argmin(volumes)) + 1
    assert m["frame_numbering"].startswith("1-based") and [f["frame_number"] for f in m["frames"]] == [1, 2, 3]
    assert m["edv_ml"] == pytest.approx(max(volumes), abs=0.01)
    assert m["ef_percent"] == pytest.approx(100 * (max(volumes) - min(volumes)) / max(volumes), abs=0.1)
    assert 20 < m["ef_percent"] < 80
    assert m["sv_ml"] == pytest.approx(m["edv_ml"] - m["esv_ml"], abs=0.02)


def test_single_volume_has_no_ef(ring):
    m = cine_measurements(ring[1][0], 0.01)
    assert m["ef_percent"] is None and len(m["frames"]) == 1
    assert m["ed_frame_number"] is None and m["es_frame_number"] is None
    assert m["myocardial_volume_variation_percent"] is None


# a 20-frame blood-pool curve as the GE study's: ES around frame 8 (index 7), an isolated one-frame dip at index 10
CURVE = [150, 148, 140, 125, 105, 88, 76, 70, 72, 80, 60, 95, 108, 118, 126, 132, 138, 142, 146, 149]


def test_one_frame_dip_does_not_decide_es():
    assert choose_ed_es(CURVE, robust=False) == (0, 10)  # the raw minimum: the dip
    assert choose_ed_es(CURVE) == (0, 7)
    assert smoothed_curve(CURVE)[10] == 80  # the dip's median with its neighbours
    assert list(np.flatnonzero(dip_frames(CURVE))) == [10]
    smooth = np.array(CURVE, float)
    smooth[10] = 90  # no dip: nothing is one, the raw rule and this one agree
    assert not dip_frames(smooth).any() and choose_ed_es(smooth) == choose_ed_es(smooth, robust=False)


def test_a_dip_next_to_the_minimum_is_not_chosen_and_ed_stays_the_largest_frame():
    # the dip lies beside the true minimum (both have the same median): the true minimum is chosen
    curve = [100, 98, 90, 80, 70, 62, 61, 40, 66, 75, 85, 95]
    assert choose_ed_es(curve, robust=False)[1] == 7 and choose_ed_es(curve)[1] == 6
    # a dip in the first frame is judged against the last one (the cycle wraps around); a peak stays ED
    wrapped = [40, 140, 110, 80, 70, 75, 90, 110, 130, 145, 190]
    assert choose_ed_es(wrapped, robust=False) == (10, 0) and choose_ed_es(wrapped) == (10, 4)


def test_short_cines_are_not_smoothed():
    assert choose_ed_es([120.0, 50.0]) == (0, 1)
    assert choose_ed_es([100.0, 40.0, 90.0, 95.0]) == (0, 1)  # below SMOOTHING_MIN_FRAMES frames


def test_reported_volumes_are_the_chosen_frames_own():
    labels = np.zeros((len(CURVE), 1, 20, 20), np.uint8)
    for t, volume in enumerate(CURVE):
        labels[t].flat[:volume] = 1  # 1 voxel = 1 mL
        labels[t].flat[300:380] = 2  # the same myocardium in every frame
    m = cine_measurements(labels, 1.0)
    assert (m["ed_frame_number"], m["es_frame_number"]) == (1, 8)
    assert (m["edv_ml"], m["esv_ml"]) == (150.0, 70.0) and m["ef_percent"] == pytest.approx(53.3, abs=0.05)
    assert m["myocardial_volume_variation_percent"] == 0.0 and "dips" in m["ed_es_choice"]
    rows = list(csv.reader(io.StringIO(measurements_csv(m))))
    assert rows[0][0] == "frame_number" and [r[0] for r in rows[1:21]] == [str(n) for n in range(1, 21)]
    summary = {r[0]: r[1] for r in rows[21:]}
    assert summary["ed_frame_number"] == "1" and summary["es_frame_number"] == "8"


def test_myocardial_volume_variation_is_reported_and_warned_beyond_its_bound():
    from unetgan.plausibility import MAX_MYOCARDIAL_VARIATION_PERCENT

    assert myocardial_variation_percent([100, 110, 90]) == pytest.approx(20.0)
    assert myocardial_variation_percent([100]) is None
    labels = np.zeros((3, 1, 20, 20), np.uint8)
    for t, (blood, myocardium) in enumerate([(150, 110), (90, 140), (120, 120)]):  # 30 / 123 = 24 %
        labels[t].flat[:blood] = 1
        labels[t].flat[blood:blood + myocardium] = 2
    m = cine_measurements(labels, 1.0)
    assert m["myocardial_volume_variation_percent"] == pytest.approx(24.3, abs=0.05)
    assert m["myocardial_volume_variation_percent"] > MAX_MYOCARDIAL_VARIATION_PERCENT
    assert any("myocardial volume varies by 24 %" in w for w in m["measurement_warnings"]), m["measurement_warnings"]
    steady = labels.copy()
    steady[1].flat[90 + 120:90 + 140] = 0  # 120 mL in every frame
    assert not cine_measurements(steady, 1.0)["measurement_warnings"]


def test_implausible_numbers_are_warned():
    from unetgan.plausibility import measurement_warnings

    normal = {"edv_ml": 150.0, "esv_ml": 60.0, "ef_percent": 60.0, "myocardial_mass_ed_g": 120.0, "frames": [{}, {}]}
    assert measurement_warnings(normal) == [] and measurement_warnings(normal, backend_mass_g=100.0) == []
    found = measurement_warnings({**normal, "edv_ml": 1526.0, "esv_ml": 137.0, "ef_percent": 91.0})
    assert len(found) == 2 and found[0].startswith("EDV 1526 mL is outside what a human left ventricle holds (20-600 mL)")
    assert found[1].startswith("EF 91 % is above 90 %")
    assert measurement_warnings({**normal, "esv_ml": 2.0})[0].startswith("ESV 2 mL is outside")
    jumped = measurement_warnings(normal, backend_mass_g=70.0)  # 120 g against the backend's 70 g: +71 %
    assert jumped == ["myocardial mass 120 g differs by more than half from the automatic result's 70 g: check the "
                      "edited myocardium"]
    assert measurement_warnings(normal, backend_mass_g=90.0) == []  # +33 %: an edit, not a slip
    single = {"frames": [{"blood_pool_ml": 900.0, "myocardial_mass_g": 100.0}]}
    assert measurement_warnings(single)[0].startswith("blood-pool volume 900 mL is outside")


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


def test_frame_warnings_name_frames_from_1(ring):
    from unetgan.quality import study_warnings

    _, labels, spacing = ring
    emptied = labels.copy()
    emptied[1] = 0  # the second frame lost its LV
    warnings = study_warnings(emptied, [0.99] * len(emptied), float(np.prod(spacing)) / 1000)
    assert warnings == ["frame 2: no left ventricle found: is this a short-axis cardiac cine?"]
