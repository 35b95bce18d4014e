"""Clean-up after the network (unetgan/postprocess.py): one LV, and end slices as an expert contours them."""
from __future__ import annotations

import numpy as np
import pytest

from unetgan import postprocess
from unetgan.postprocess import clean_frame, keep_largest_component, myocardial_coverage, trim_end_slices


def lv_slice(size=64, open_degrees=0.0, blood_pool=True, radius_px=10):
    """A blood pool disc of radius_px inside a 5-pixel myocardial ring with a gap of open_degrees (centred on
    the right)."""
    yy, xx = np.mgrid[0:size, 0:size] - size / 2 + 0.5
    radius, angle = np.hypot(yy, xx), np.degrees(np.arctan2(yy, xx))
    labels = np.zeros((size, size), np.uint8)
    ring = (radius >= radius_px) & (radius < radius_px + 5) & (np.abs(angle) >= open_degrees / 2)
    labels[ring] = 2
    if blood_pool:
        labels[radius < radius_px] = 1
    return labels


@pytest.mark.parametrize("open_degrees, expected", [(0, 1.0), (180, 0.5), (270, 0.25)])
def test_coverage_is_the_share_of_directions_with_myocardium(open_degrees, expected):
    # a ring edge that cuts a sector counts it: up to one sector more at each side of the gap
    assert expected <= myocardial_coverage(lv_slice(open_degrees=open_degrees)) <= expected + 2 / 36 + 1e-9
    assert myocardial_coverage(lv_slice(blood_pool=False)) is None  # apex: myocardium only
    assert myocardial_coverage(np.where(lv_slice() == 2, 0, lv_slice())) == 0.0  # blood pool without muscle


def test_open_basal_slices_are_dropped_from_the_ends_only():
    closed, crescent = lv_slice(), lv_slice(open_degrees=200)  # coverage ~0.44 < 0.70
    apex = lv_slice(blood_pool=False)
    # base: two crescents above the valve plane; a crescent in the middle of the stack (an artefact) stays
    stack = np.stack([crescent, crescent, closed, closed, crescent, closed, closed, apex])
    cleaned = trim_end_slices(stack)
    assert not cleaned[:2].any()
    np.testing.assert_array_equal(cleaned[2:], stack[2:])
    assert stack[0].any()  # the input is not changed
    # the other end, if open, is dropped too; an apex of myocardium only is not a slice to judge
    np.testing.assert_array_equal(trim_end_slices(stack[::-1])[::-1], cleaned)


def test_short_stacks_and_all_open_stacks_keep_their_middle():
    crescent = lv_slice(open_degrees=200)
    single = crescent[None]
    assert trim_end_slices(single) is single  # a single image has no ends to judge
    pair = np.stack([crescent, crescent])
    assert trim_end_slices(pair) is pair
    five = np.stack([crescent] * 5)
    kept = trim_end_slices(five)
    assert [bool(s.any()) for s in kept] == [False, False, True, False, False]
    four = np.stack([crescent] * 4)  # an even stack keeps both middle slices
    assert [bool(s.any()) for s in trim_end_slices(four)] == [False, True, True, False]


def test_the_rule_follows_the_threshold():
    stack = np.stack([lv_slice(open_degrees=90), lv_slice(), lv_slice(), lv_slice()])  # coverage 0.75
    assert trim_end_slices(stack, 0.70) is stack
    assert not trim_end_slices(stack, 0.80)[0].any()
    # chosen by cross-validation over the dev subjects (docs/choice_cv.md)
    assert (postprocess.MIN_END_SLICE_COVERAGE, postprocess.MIN_BASAL_AREA_RATIO) == (0.75, 0.65)


def cone(radii):
    """A closed LV per slice, blood pool radius from the list: narrow at the apex, wide at the base."""
    return np.stack([lv_slice(radius_px=r) for r in radii])


def test_the_basal_end_is_the_wider_one():
    areas = [int((s == 1).sum()) for s in cone([4, 6, 8, 10, 11, 12])]
    assert postprocess.basal_end(areas) == 1
    assert postprocess.basal_end(areas[::-1]) == 0
    assert postprocess.basal_end([5, 9, 5]) is None  # a tie has no basal end


def test_a_shrinking_basal_slice_is_dropped_and_an_apical_one_kept():
    # base at the end: the last ring is closed but holds (7/12)^2 = 0.34 of its neighbour's blood pool
    stack = cone([4, 6, 8, 10, 12, 7])
    cleaned = trim_end_slices(stack, 0.70, 0.65)
    assert not cleaned[-1].any()
    np.testing.assert_array_equal(cleaned[:-1], stack[:-1])
    np.testing.assert_array_equal(trim_end_slices(stack[::-1], 0.70, 0.65)[::-1], cleaned)  # either slice order
    # the apical end shrinks by nature ((4/6)^2 = 0.44) and is kept; so is a basal slice above the ratio
    assert trim_end_slices(stack, 0.70, 0.30) is stack
    gentle = cone([4, 6, 8, 10, 12, 11])  # 0.84 of its neighbour
    assert trim_end_slices(gentle, 0.70, 0.65) is gentle
    assert trim_end_slices(stack, 0.70, 0.0) is stack  # 0 turns the rule off


def test_clean_frame_keeps_one_lv_then_trims_its_ends():
    stack = np.stack([lv_slice(open_degrees=200), lv_slice(), lv_slice(), lv_slice()])
    stack[1:, :6, :6] = 1  # a stray island far from the LV
    cleaned = clean_frame(stack)
    assert not cleaned[0].any() and not cleaned[:, :6, :6].any()
    np.testing.assert_array_equal(cleaned[1:], keep_largest_component(stack)[1:])


def test_a_blood_pool_beyond_a_slice_without_one_is_dropped():
    """Past the base, the atrium can show as a closed ring with a wide blood pool, joined to the LV only by a few
    voxels of muscle on a slice without blood pool: the area rule cannot judge it (its neighbour has no blood
    pool), so the cavity rule drops it; the larger run of blood-pool slices is the LV."""
    bridge = np.zeros_like(lv_slice())
    bridge[32, 40:45] = 2  # a few voxels of myocardium joining the two in 3D
    atrium = lv_slice(radius_px=14)
    stack = np.concatenate([cone([4, 6, 8, 10, 12]), bridge[None], atrium[None]])
    assert keep_largest_component(stack) is stack  # one 3D component: the bridge joins them
    assert trim_end_slices(stack) is stack  # a closed ring next to a slice without blood pool
    cleaned = clean_frame(stack)
    assert not cleaned[-1].any()
    np.testing.assert_array_equal(cleaned[:-1], stack[:-1])  # the LV and the bridge slice are untouched
    np.testing.assert_array_equal(postprocess.keep_one_cavity(stack[::-1])[::-1], cleaned)  # either slice order
    # the run with the most blood pool wins, wherever it lies; a stack with one run is returned as it is
    small_run = np.concatenate([lv_slice(radius_px=5)[None], bridge[None], cone([4, 6, 8])])
    kept = postprocess.keep_one_cavity(small_run)
    assert not kept[0].any() and kept[1].any()
    np.testing.assert_array_equal(kept[1:], small_run[1:])
    one_run = cone([4, 6, 8, 10])
    assert postprocess.keep_one_cavity(one_run) is one_run
